package enginetest

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/asi1d/asi1d/engine"
)

var _ engine.SeqStater = (*Fake)(nil)

// stateMagic starts the fake's sequence states.
const stateMagic = "FAKESEQ1"

// StateID implements engine.SeqStater: the fake's cells per sequence, and
// StateSettings when set (to stand for other settings).
func (f *Fake) StateID() string {
	return fmt.Sprintf("fake seq state v1; n_ctx_seq=%d; %s", f.info.NCtxSeq, f.StateSettings)
}

// SaveSeq implements engine.SeqStater: the magic, then the sequence's
// tokens.
func (f *Fake) SaveSeq(seq engine.SeqID) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, engine.ErrClosed
	}
	if seq < 0 || int(seq) >= len(f.kv) {
		return nil, fmt.Errorf("fake: save: sequence %d out of range", seq)
	}
	b := append([]byte(nil), stateMagic...)
	for _, t := range f.kv[seq] {
		b = binary.LittleEndian.AppendUint32(b, uint32(t))
	}
	f.stats.Saves++
	return b, nil
}

// RestoreSeq implements engine.SeqStater. A state that is not the fake's,
// or longer than a sequence, is refused and leaves the sequence empty.
func (f *Fake) RestoreSeq(seq engine.SeqID, state []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return engine.ErrClosed
	}
	if seq < 0 || int(seq) >= len(f.kv) {
		return fmt.Errorf("fake: restore: sequence %d out of range", seq)
	}
	f.kv[seq] = nil
	if len(state) < len(stateMagic) || string(state[:len(stateMagic)]) != stateMagic || (len(state)-len(stateMagic))%4 != 0 {
		return errors.New("fake: restore: not a fake sequence state")
	}
	body := state[len(stateMagic):]
	if len(body)/4 > f.info.NCtxSeq {
		return errors.New("fake: restore: state longer than a sequence")
	}
	toks := make([]engine.Token, len(body)/4)
	for i := range toks {
		toks[i] = engine.Token(binary.LittleEndian.Uint32(body[4*i:]))
	}
	f.kv[seq] = toks
	f.stats.Restores++
	return nil
}
