package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthhq/berth/engine"
)

func newDomainsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "domains", Short: "Route host names to apps"}
	cmd.AddCommand(
		&cobra.Command{
			Use:   "add APP HOST",
			Short: "Route HOST to APP",
			Args:  cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := g.client()
				if err != nil {
					return err
				}
				d, err := c.AddDomain(cmd.Context(), args[0], args[1])
				if err != nil {
					return err
				}
				if g.json() {
					return g.printJSON(d)
				}
				fmt.Fprintf(g.sys.out, "Added %s to %s.\n", d.Host, args[0])
				return nil
			},
		},
		&cobra.Command{
			Use:     "list APP",
			Aliases: []string{"ls"},
			Short:   "List the host names routed to APP",
			Args:    cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := g.client()
				if err != nil {
					return err
				}
				ds, err := c.Domains(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if g.json() {
					if ds == nil {
						ds = []engine.DomainStatus{}
					}
					return g.printJSON(ds)
				}
				now := time.Now()
				t := newTable(g.sys.out, "HOST", "CERT", "ISSUER", "EXPIRES", "ADDED", "ERROR")
				for _, d := range ds {
					c := d.Certificate
					t.row(d.Host, c.Status, clipText(c.Issuer, 32), expires(c.NotAfter, now), age(d.CreatedAt, now), clipText(c.LastError, 60))
				}
				return t.flush()
			},
		},
		newDomainsCertCmd(g),
		&cobra.Command{
			Use:     "remove APP HOST",
			Aliases: []string{"rm"},
			Short:   "Stop routing HOST to APP",
			Args:    cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := g.client()
				if err != nil {
					return err
				}
				if err := c.RemoveDomain(cmd.Context(), args[0], args[1]); err != nil {
					return err
				}
				if g.json() {
					return g.printJSON(map[string]string{"removed": args[1]})
				}
				fmt.Fprintf(g.sys.out, "Removed %s from %s.\n", args[1], args[0])
				return nil
			},
		},
	)
	return cmd
}

// maxPEMFile bounds a certificate or key file; the server takes 1 MiB for
// both.
const maxPEMFile = 256 << 10

func newDomainsCertCmd(g *globals) *cobra.Command {
	var certFile, keyFile string
	var remove bool
	cmd := &cobra.Command{
		Use:   "cert APP HOST (--cert FILE --key FILE | --remove)",
		Short: "Serve a custom certificate for HOST instead of an ACME one, or remove it",
		Long: "Serve a custom certificate for HOST instead of an ACME one: --cert is a PEM chain, leaf first, " +
			"--key its PEM private key. The leaf must cover HOST and be valid now. --remove goes back to ACME.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			app, host := args[0], args[1]
			switch {
			case remove && (certFile != "" || keyFile != ""):
				return errors.New("use either --remove or --cert and --key, not both")
			case !remove && (certFile == "" || keyFile == ""):
				return errors.New("give --cert FILE and --key FILE (PEM), or --remove")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			if remove {
				if err := c.RemoveCertificate(cmd.Context(), app, host); err != nil {
					return err
				}
				if g.json() {
					return g.printJSON(map[string]string{"removed_certificate": host})
				}
				fmt.Fprintf(g.sys.out, "Removed the custom certificate of %s; ACME takes over where it can.\n", host)
				return nil
			}
			certPEM, err := readPEMFile("--cert", certFile)
			if err != nil {
				return err
			}
			keyPEM, err := readPEMFile("--key", keyFile)
			if err != nil {
				return err
			}
			d, err := c.SetCertificate(cmd.Context(), app, host, certPEM, keyPEM)
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(d)
			}
			msg := fmt.Sprintf("Installed a custom certificate for %s on %s: %s", d.Host, app, d.Certificate.Status)
			if d.Certificate.NotAfter != nil {
				msg += ", expires " + expires(d.Certificate.NotAfter, time.Now())
			}
			if d.Certificate.LastError != "" {
				msg += " (" + d.Certificate.LastError + ")"
			}
			fmt.Fprintln(g.sys.out, msg+".")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&certFile, "cert", "", "PEM certificate chain file, leaf first")
	f.StringVar(&keyFile, "key", "", "PEM private key file")
	f.BoolVar(&remove, "remove", false, "remove the custom certificate")
	return cmd
}

// readPEMFile reads a certificate or key file of at most maxPEMFile bytes.
// Errors name the file, never its content.
func readPEMFile(flag, name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPEMFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: read %s: %w", flag, name, err)
	}
	if len(b) > maxPEMFile {
		return nil, fmt.Errorf("%s: %s is larger than %d KiB; is it a PEM file?", flag, name, maxPEMFile>>10)
	}
	return b, nil
}

// expires describes a certificate's expiry: "2026-03-01 (in 89d)".
func expires(t *time.Time, now time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	d := t.Local().Format(time.DateOnly)
	if now.After(*t) {
		return d + " (expired)"
	}
	return d + " (in " + age(now.Add(-t.Sub(now)), now) + ")"
}

// clipText shortens s to at most n characters for a table cell.
func clipText(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
