package verify

import (
	"encoding/binary"
	"math/bits"
)

// table finds a compiled entry by its id, the first 8 bytes of its hash. A hash is uniformly
// random, so its id needs no hashing of its own: the table is open-addressed, indexed by the id's
// top bits, probed linearly and at most half full, so a lookup takes one or two probes. Go's map
// would hash the id again and take more memory; with 100,000 keys, the cache misses on a compact
// table and on the entry itself are most of what a lookup costs.
type table struct {
	slots []int32 // 1 + the position of an entry in keys; 0 for a free slot
	shift uint    // 64 - log2(len(slots))
}

func newTable(n int) table {
	b := max(1, bits.Len(uint(2*n))) // 2^b > 2n
	return table{slots: make([]int32, 1<<b), shift: uint(64 - b)}
}

func idOf(hash *[32]byte) uint64 { return binary.BigEndian.Uint64(hash[:8]) }

// find returns the position in keys of the entry with id, or -1.
func (t *table) find(keys []compiled, id uint64) int {
	mask := uint64(len(t.slots) - 1)
	for i := id >> t.shift; ; i = (i + 1) & mask {
		n := int(t.slots[i]) - 1
		if n < 0 || idOf(&keys[n].hash) == id {
			return n
		}
	}
}

// insert adds keys[pos] unless an entry with its id is there already; it reports whether it did.
func (t *table) insert(keys []compiled, pos int) bool {
	id := idOf(&keys[pos].hash)
	mask := uint64(len(t.slots) - 1)
	for i := id >> t.shift; ; i = (i + 1) & mask {
		n := int(t.slots[i]) - 1
		if n < 0 {
			t.slots[i] = int32(pos + 1)
			return true
		}
		if idOf(&keys[n].hash) == id {
			return false
		}
	}
}
