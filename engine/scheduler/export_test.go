package scheduler

// SetMinParallelLogits lowers the size of a step from which rows are
// sampled on several goroutines, so that tests with the small fake take the
// parallel path. It returns the old value.
func SetMinParallelLogits(n int) int {
	old := minParallelLogits
	minParallelLogits = n
	return old
}
