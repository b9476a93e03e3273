package history

import (
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"
)

func write(v, call, ret int64) Op {
	return Op{Service: "s", Kind: Write, Value: v, Call: call, Return: ret, OK: true, Manager: "m"}
}

func unknown(v, call int64) Op {
	return Op{Service: "s", Kind: Write, Value: v, Call: call, Return: call + 1, Unknown: true, Manager: "m"}
}

func read(v, call, ret int64) Op {
	return Op{Service: "s", Kind: Read, Value: v, Call: call, Return: ret, OK: true, Manager: "m"}
}

const initial = 1

func TestChecks(t *testing.T) {
	cases := []struct {
		name         string
		h            []Op
		linearizable bool
		stale        int // reads StaleReads reports
	}{
		{"reads follow writes", []Op{write(3, 0, 10), read(3, 11, 12), write(2, 13, 20), read(2, 21, 22)}, true, 0},
		{"a read misses an acknowledged write", []Op{write(3, 0, 10), read(1, 11, 12)}, false, 1},
		{"a read concurrent with a write may miss it", []Op{write(3, 0, 10), read(1, 5, 6)}, true, 0},
		{"a read of the initial value before any write", []Op{read(1, 0, 1), write(3, 2, 10)}, true, 0},
		{"no such service", []Op{read(NotFound, 1, 2)}, false, 1},
		{"an unknown write explains a read", []Op{write(3, 0, 10), unknown(4, 8), read(4, 11, 12)}, true, 0},
		{"an unknown write never undoes a later one", []Op{write(3, 0, 10), unknown(4, 8), read(4, 11, 12), read(3, 13, 14)}, false, 0},
		{"a failed read counts for nothing", []Op{write(3, 0, 10), {Service: "s", Kind: Read, Value: 7, Call: 11, Return: 12}}, true, 0},
		{"services are separate registers", []Op{write(3, 0, 10), {Service: "t", Kind: Read, Value: 1, Call: 11, Return: 12, OK: true}}, true, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := porcupine.CheckOperations(Model(initial), Operations(tc.h)); got != tc.linearizable {
				t.Errorf("porcupine says linearizable=%v, want %v", got, tc.linearizable)
			}
			if got := StaleReads(tc.h, initial); len(got) != tc.stale {
				t.Errorf("StaleReads found %d: %q, want %d", len(got), got, tc.stale)
			}
		})
	}
}

func TestStaleReadSaysWhatHappened(t *testing.T) {
	h := []Op{write(3, 0, 10_000_000), read(NotFound, 2_000_000_000, 2_001_000_000)}
	h[1].Manager = "node-02"
	got := StaleReads(h, initial)
	want := "s: node-02 answered no such service at 2.000s-2.001s, after the write of 3 acknowledged by m at 0.000s-0.010s, and nothing removed it"
	if len(got) != 1 || got[0] != want {
		t.Errorf("StaleReads = %q, want %q", got, want)
	}
}

func TestCheckFinal(t *testing.T) {
	h := []Op{write(3, 0, 10), write(2, 11, 20), write(5, 15, 25), unknown(4, 5)}
	for final, ok := range map[int64]bool{2: true, 5: true, 4: true, 3: false, 1: false} {
		err := CheckFinal(h, "s", initial, final)
		if (err == nil) != ok {
			t.Errorf("final %d: %v, want ok=%v", final, err, ok)
		}
	}
	if err := CheckFinal(nil, "s", initial, initial); err != nil {
		t.Errorf("no writes, final initial: %v", err)
	}
	if err := CheckFinal([]Op{unknown(4, 5)}, "s", initial, 4); err != nil {
		t.Errorf("only an unknown write of 4, final 4: %v", err)
	}
	err := CheckFinal(h, "s", initial, 3)
	if err == nil || !strings.Contains(err.Error(), "the last acknowledged write (through m, at 0.000s) set 5") {
		t.Errorf("CheckFinal error: %v", err)
	}
}
