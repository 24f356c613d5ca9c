package web

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/boombuler/barcode/qr"
)

func TestQRSVG(t *testing.T) {
	const uri = "otpauth://totp/berth:owner@example.com?algorithm=SHA1&digits=6&issuer=berth&period=30&secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	svg, err := qrSVG(uri, `QR <code> "for" you`)
	if err != nil {
		t.Fatal(err)
	}
	s := string(svg)
	bc, err := qr.Encode(uri, qr.M, qr.Auto)
	if err != nil {
		t.Fatal(err)
	}
	n := bc.Bounds().Dx()
	size := strconv.Itoa(n + 2*qrQuiet)
	if !strings.Contains(s, `viewBox="0 0 `+size+` `+size+`"`) || !strings.Contains(s, `<rect width="`+size+`" height="`+size+`" fill="#fff"/>`) {
		t.Errorf("the SVG is not %s modules square with its quiet zone:\n%.300s", size, s)
	}
	if !strings.Contains(s, `aria-label="QR &lt;code&gt; &#34;for&#34; you"`) || strings.Contains(s, "<code>") {
		t.Errorf("the label is not escaped:\n%.300s", s)
	}
	// Every dark module, and only those, is covered by a run of the path.
	covered := map[[2]int]bool{}
	for _, m := range regexp.MustCompile(`M(\d+) (\d+)h(\d+)v1h-(\d+)z`).FindAllStringSubmatch(s, -1) {
		x, _ := strconv.Atoi(m[1])
		y, _ := strconv.Atoi(m[2])
		run, _ := strconv.Atoi(m[3])
		if m[3] != m[4] {
			t.Fatalf("run %q does not close", m[0])
		}
		for i := range run {
			covered[[2]int{x + i - qrQuiet, y - qrQuiet}] = true
		}
	}
	dark := 0
	for y := range n {
		for x := range n {
			if qrDark(bc, x, y) {
				dark++
				if !covered[[2]int{x, y}] {
					t.Fatalf("dark module %d,%d not drawn", x, y)
				}
			}
		}
	}
	if dark == 0 || len(covered) != dark {
		t.Errorf("%d modules drawn, %d dark", len(covered), dark)
	}
	// The three finder patterns: the top-left corner module is dark.
	if !qrDark(bc, 0, 0) || !qrDark(bc, n-1, 0) || !qrDark(bc, 0, n-1) {
		t.Error("no finder patterns in the corners")
	}
}
