package verify

import (
	"hash/crc32"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var tagByEnvironment = map[string]string{
	"production": "live", "staging": "stg", "test": "test", "development": "dev",
}

// formatKey is keyrotor's formatKey: the random bytes as one big-endian integer in fixed-width
// base62, after the prefix and environment tag, then the checksum of all that.
func formatKey(prefix, environment string, random []byte) string {
	width := base62Length(8 * len(random))
	body := make([]byte, width)
	n := new(big.Int).SetBytes(random)
	base, digit := big.NewInt(62), new(big.Int)
	for i := width - 1; i >= 0; i-- {
		n.DivMod(n, base, digit)
		body[i] = base62Alphabet[digit.Int64()]
	}
	head := prefix + "_" + tagByEnvironment[environment] + "_" + string(body)
	return head + checksum(head)
}

// checksum is keyrotor's: the CRC-32 (IEEE) of head as six zero-padded base62 digits.
func checksum(head string) string {
	crc := crc32.ChecksumIEEE([]byte(head))
	var out [checksumLength]byte
	for i := range out {
		out[len(out)-1-i] = base62Alphabet[crc%62]
		crc /= 62
	}
	return string(out[:])
}

// writeSecretVolume writes files into root as the kubelet's atomic writer updates a Secret volume:
// every file into a new timestamped folder, then the `..data` symlink swapped to it atomically
// (a temporary symlink renamed over it), each file a symlink to `..data/<name>`. generation names
// the folder, so it must differ between writes.
func writeSecretVolume(t *testing.T, root string, files map[string]string, generation int) {
	t.Helper()
	folder := "..2026_11_28_12_00_00." + leftPad(generation, 6)
	must(t, os.Mkdir(filepath.Join(root, folder), 0o755))
	for name, content := range files {
		must(t, os.WriteFile(filepath.Join(root, folder, name), []byte(content), 0o644))
	}
	must(t, os.Symlink(folder, filepath.Join(root, "..data_tmp")))
	must(t, os.Rename(filepath.Join(root, "..data_tmp"), filepath.Join(root, "..data")))
	for name := range files {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(root, name)); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
	}
}

func leftPad(n, width int) string {
	s := big.NewInt(int64(n)).String()
	return strings.Repeat("0", max(0, width-len(s))) + s
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
