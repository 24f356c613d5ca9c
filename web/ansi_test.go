package web

import (
	"reflect"
	"testing"
)

func TestANSISpans(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []span
	}{
		{"plain", []span{{"", "plain"}}},
		{"\x1b[31mred\x1b[0m done", []span{{"fg1", "red"}, {"", " done"}}},
		{"\x1b[1;92mok\x1b[22m!\x1b[m", []span{{"b fg10", "ok"}, {"fg10", "!"}}},
		{"\x1b[2Kclear\rline\x07", []span{{"", "clearline"}}},
		{"<b>\x1b[33m&amp;", []span{{"", "<b>"}, {"fg3", "&amp;"}}},
		{"cut \x1b[3", []span{{"", "cut "}}},
		{"", nil},
	} {
		if got := ansiSpans(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ansiSpans(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
