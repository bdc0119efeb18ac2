package verify

import "hash/crc32"

// crc32String is crc32.ChecksumIEEE of a string. hash/crc32 would need the key as a []byte,
// which escapes to the heap there (it dispatches through a function value): an allocation per
// verification. For inputs shorter than 64 bytes, as keys mostly are, hash/crc32 runs
// slicing-by-8 in Go anyway; this is the same algorithm.
func crc32String(s string) uint32 {
	crc := ^uint32(0)
	for ; len(s) >= 8; s = s[8:] {
		crc ^= uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
		crc = crcTables[0][s[7]] ^ crcTables[1][s[6]] ^ crcTables[2][s[5]] ^ crcTables[3][s[4]] ^
			crcTables[4][crc>>24] ^ crcTables[5][crc>>16&0xff] ^
			crcTables[6][crc>>8&0xff] ^ crcTables[7][crc&0xff]
	}
	for i := 0; i < len(s); i++ {
		crc = crcTables[0][byte(crc)^s[i]] ^ crc>>8
	}
	return ^crc
}

// crcTables[k][b] is the CRC of byte b followed by k zero bytes.
var crcTables = func() (tables [8]crc32.Table) {
	tables[0] = *crc32.MakeTable(crc32.IEEE)
	for b := range 256 {
		crc := tables[0][b]
		for k := 1; k < len(tables); k++ {
			crc = tables[0][crc&0xff] ^ crc>>8
			tables[k][b] = crc
		}
	}
	return tables
}()
