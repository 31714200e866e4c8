package gguf

// TensorType is a ggml tensor type id (ggml_type) as GGUF stores it.
type TensorType uint32

// typeInfo is a tensor type's block (elements per block), the bytes of one
// block, and its name.
type typeInfo struct {
	block, size uint64
	name        string
}

// tensorTypes are the tensor types this build knows, with the sizes of
// ggml's type traits (the ggml vendored by the pinned ollama module). The
// names are those the pinned module's fs/ggml gives (the names asi1d has
// always shown); the types it leaves unnamed are "unknown". Ids 4 and 5
// (Q4_2, Q4_3), 31 to 33 (Q4_0_4_4...) and 36 to 38 (IQ4_NL_4_4...) were
// removed from ggml, and 34, 35 (TQ1_0, TQ2_0) are not supported: a tensor
// of any of them is an error.
var tensorTypes = map[TensorType]typeInfo{
	0:  {1, 4, "F32"},
	1:  {1, 2, "F16"},
	2:  {32, 18, "Q4_0"},
	3:  {32, 20, "Q4_1"},
	6:  {32, 22, "Q5_0"},
	7:  {32, 24, "Q5_1"},
	8:  {32, 34, "Q8_0"},
	9:  {32, 36, "Q8_1"},
	10: {256, 84, "Q2_K"},
	11: {256, 110, "Q3_K"},
	12: {256, 144, "Q4_K"},
	13: {256, 176, "Q5_K"},
	14: {256, 210, "Q6_K"},
	15: {256, 292, "Q8_K"},
	16: {256, 66, ""},  // IQ2_XXS
	17: {256, 74, ""},  // IQ2_XS
	18: {256, 98, ""},  // IQ3_XXS
	19: {256, 50, ""},  // IQ1_S
	20: {32, 18, ""},   // IQ4_NL
	21: {256, 110, ""}, // IQ3_S
	22: {256, 82, ""},  // IQ2_S
	23: {256, 136, ""}, // IQ4_XS
	24: {1, 1, ""},     // I8
	25: {1, 2, ""},     // I16
	26: {1, 4, ""},     // I32
	27: {1, 8, ""},     // I64
	28: {1, 8, "F64"},
	29: {256, 56, ""}, // IQ1_M
	30: {1, 2, "BF16"},
	39: {32, 17, "MXFP4"},
}

// Known reports whether this build knows the type (its block and sizes).
func (t TensorType) Known() bool { _, ok := tensorTypes[t]; return ok }

// BlockSize is the number of elements in one block of the type; 0 when
// the type is unknown.
func (t TensorType) BlockSize() uint64 { return tensorTypes[t].block }

// TypeSize is the number of bytes of one block of the type; 0 when the
// type is unknown.
func (t TensorType) TypeSize() uint64 { return tensorTypes[t].size }

func (t TensorType) String() string {
	if n := tensorTypes[t].name; n != "" {
		return n
	}
	return "unknown"
}

// FileType is general.file_type (llama_ftype): the quantization the file
// was made with.
type FileType uint32

// fileTypeNames are the file types the pinned module's fs/ggml names.
var fileTypeNames = map[FileType]string{
	0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 4: "MXFP4", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
	10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M",
	16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 21: "Q2_K_S", 32: "BF16",
}

func (t FileType) String() string {
	if n, ok := fileTypeNames[t]; ok {
		return n
	}
	return "unknown"
}
