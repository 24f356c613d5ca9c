package web

import (
	"fmt"
	"html/template"
	"strings"

	"github.com/boombuler/barcode"
	"github.com/boombuler/barcode/qr"
)

// qrQuiet is the empty margin around a QR code, in modules (the standard's
// minimum).
const qrQuiet = 4

// qrDark reports whether the module at x, y of a QR code is dark.
func qrDark(bc barcode.Barcode, x, y int) bool {
	r, _, _, _ := bc.At(x, y).RGBA()
	return r == 0
}

// qrSVG draws text as a QR code in SVG: dark modules on a white square
// (in both themes, so scanners read it), one path of horizontal runs, no
// script or style. The encoder is the one the TOTP library already uses.
func qrSVG(text, label string) (template.HTML, error) {
	bc, err := qr.Encode(text, qr.M, qr.Auto)
	if err != nil {
		return "", fmt.Errorf("encode QR code: %w", err)
	}
	n := bc.Bounds().Dx()
	size := n + 2*qrQuiet
	var path strings.Builder
	for y := range n {
		for x := 0; x < n; {
			if !qrDark(bc, x, y) {
				x++
				continue
			}
			run := 1
			for x+run < n && qrDark(bc, x+run, y) {
				run++
			}
			fmt.Fprintf(&path, "M%d %dh%dv1h-%dz", x+qrQuiet, y+qrQuiet, run, run)
			x += run
		}
	}
	// Every value written here is a number or escaped: the path is digits
	// and letters, the label goes through EscapeString.
	return template.HTML(fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" class="qr" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s" shape-rendering="crispEdges">`+
		`<rect width="%d" height="%d" fill="#fff"/><path fill="#000" d="%s"/></svg>`,
		size, size, size*4, size*4, template.HTMLEscapeString(label), size, size, path.String())), nil
}
