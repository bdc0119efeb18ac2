package verify

import (
	"hash/crc32"
	"strings"
	"testing"
)

func TestCRC32String(t *testing.T) {
	text := strings.Repeat("kr_live_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\xff", 3)
	for n := range len(text) + 1 {
		if got, want := crc32String(text[:n]), crc32.ChecksumIEEE([]byte(text[:n])); got != want {
			t.Fatalf("crc32String of %d bytes = %#x, want %#x", n, got, want)
		}
	}
}
