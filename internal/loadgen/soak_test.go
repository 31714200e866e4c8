package loadgen

import "testing"

func TestRSSTrend(t *testing.T) {
	rep := &SoakReport{}
	if rep.rssTrend() != "" {
		t.Fatal("a trend from no samples")
	}
	for i := range 8 {
		mib := 40.0 + float64(min(i, 4)) // grows, then levels off
		rep.RSS = append(rep.RSS, RSSSample{Seconds: float64(10 * i), Done: int64(1000 * i), Bytes: mib * (1 << 20)})
	}
	got := rep.rssTrend()
	want := "40.0 MiB at 0, 42.0 MiB at 2000, 44.0 MiB at 4000, 44.0 MiB at 6000, 44.0 MiB at 7000 requests; second half +0.0%"
	if got != want {
		t.Fatalf("trend:\n got %s\nwant %s", got, want)
	}
}
