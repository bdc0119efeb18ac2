package verify

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

// jsString is JavaScript's String(value) for a decoded JSON value; present is false for a
// missing field, which JavaScript reads as undefined. keyrotor quotes a wrong apiVersion this way,
// and a verifier's messages are to match it whatever the document holds.
func jsString(value any, present bool) string {
	switch v := value.(type) {
	case nil:
		if !present {
			return "undefined"
		}
		return "null"
	case string:
		return v
	case bool:
		return strconv.FormatBool(v)
	case json.Number:
		f, _ := strconv.ParseFloat(string(v), 64)
		return jsNumber(f)
	case []any:
		// Array.prototype.toString joins the elements with commas, null ones as "".
		parts := make([]string, len(v))
		for i, item := range v {
			if item != nil {
				parts[i] = jsString(item, true)
			}
		}
		return strings.Join(parts, ",")
	default:
		return "[object Object]"
	}
}

// jsNumber formats f as JavaScript's Number.prototype.toString does (ECMA-262, Number::toString):
// the shortest digits that read back as f, in positional notation from 1e-6 up to 1e21.
func jsNumber(f float64) string {
	switch {
	case f == 0:
		return "0" // -0 too
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f < 0:
		return "-" + jsNumber(-f)
	}
	mantissa, exponent, _ := strings.Cut(strconv.FormatFloat(f, 'e', -1, 64), "e")
	digits := strings.Replace(mantissa, ".", "", 1)
	e, _ := strconv.Atoi(exponent)
	k, n := len(digits), e+1 // f = 0.digits × 10^n
	switch {
	case k <= n && n <= 21:
		return digits + strings.Repeat("0", n-k)
	case 0 < n && n <= 21:
		return digits[:n] + "." + digits[n:]
	case -6 < n && n <= 0:
		return "0." + strings.Repeat("0", -n) + digits
	}
	out := digits[:1]
	if k > 1 {
		out += "." + digits[1:]
	}
	if n-1 >= 0 {
		return out + "e+" + strconv.Itoa(n-1)
	}
	return out + "e-" + strconv.Itoa(1-n)
}
