package catalog

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
)

// A split GGUF is one model in several files named
// PREFIX-00001-of-0000N.gguf ... PREFIX-0000N-of-0000N.gguf in one
// directory (llama.cpp's gguf-split naming). llama.cpp is given the first
// part and opens the others by that naming convention; the first part's
// header holds the model's metadata.
var splitRE = regexp.MustCompile(`^(.+)-(\d{5})-of-(\d{5})\.gguf$`)

// splitName reads a split part's file name (a base name): its prefix, its
// number (1-based) and the count of parts. ok is false for a name that is
// not a part's.
func splitName(base string) (prefix string, no, count int, ok bool) {
	m := splitRE.FindStringSubmatch(base)
	if m == nil {
		return "", 0, 0, false
	}
	no, _ = strconv.Atoi(m[2])
	count, _ = strconv.Atoi(m[3])
	if no < 1 || count < 2 || no > count {
		return "", 0, 0, false
	}
	return m[1], no, count, true
}

// splitPart is the file name of part no of count of a split with prefix.
func splitPart(prefix string, no, count int) string {
	return fmt.Sprintf("%s-%05d-of-%05d.gguf", prefix, no, count)
}

// splitParts is every file of the model whose (first) file is path: the
// parts of a split in order when path is a split's first part, else just
// path.
func splitParts(path string) []string {
	prefix, no, count, ok := splitName(filepath.Base(path))
	if !ok || no != 1 {
		return []string{path}
	}
	dir := filepath.Dir(path)
	out := make([]string, count)
	for i := range count {
		out[i] = filepath.Join(dir, splitPart(prefix, i+1, count))
	}
	return out
}

// splitSize sums the sizes of the other parts of the split whose first
// part is path (0 when path is not a split's first part); a missing or
// unreadable part is an error that names it.
func splitSize(path string) (int64, error) {
	parts := splitParts(path)
	total := int64(0)
	for i, p := range parts[1:] {
		fi, err := os.Stat(p)
		if err != nil {
			return 0, fmt.Errorf("part %d of %d of the split model is missing (%s): pull it again", i+2, len(parts), p)
		}
		if !fi.Mode().IsRegular() {
			return 0, fmt.Errorf("part %d of %d of the split model (%s) is not a regular file", i+2, len(parts), p)
		}
		total += fi.Size()
	}
	return total, nil
}
