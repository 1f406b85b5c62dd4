package runnel

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// TestWordsMatchesPlain holds Words' ASCII path to the plain split it
// stands for, on random texts of ASCII and other characters.
func TestWordsMatchesPlain(t *testing.T) {
	plain := func(s string) []string {
		return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !isWordRune(r) })
	}
	pieces := []string{"a", "Z", "Docker", "ABC", "x9", "42", "_", "-", " ", "  ", "\t", "\n", ".", ",",
		"'", "`", "@", "[", "{", "~", "\x7f", "\x00", "é", "Ü", "ß", "日本", "\u0301", "\xff", "\x80", "İ"}
	r := rand.New(rand.NewPCG(3, 4))
	ascii := 0
	for range 20000 {
		var b strings.Builder
		onlyASCII := r.IntN(2) == 0
		for range r.IntN(20) {
			p := pieces[r.IntN(len(pieces))]
			for onlyASCII && p[0] >= 0x80 {
				p = pieces[r.IntN(len(pieces))]
			}
			b.WriteString(p)
		}
		s := b.String()
		if onlyASCII {
			ascii++
		}
		if got, want := Words(s), plain(s); !reflect.DeepEqual(got, want) {
			t.Fatalf("Words(%q) = %q, the plain split %q", s, got, want)
		}
	}
	if ascii == 0 {
		t.Fatal("no ASCII text was tried")
	}
}
