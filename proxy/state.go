package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/berthhq/berth"
)

// stateFile is the name of the persisted routing table in the state
// directory; a file that cannot be restored is renamed with badSuffix.
const (
	stateFile    = "routes.json"
	badSuffix    = ".bad"
	stateVersion = 1
)

// state is the on-disk form of the routing table.
type state struct {
	Version int           `json:"version"`
	Routes  []berth.Route `json:"routes"`
}

// loadState builds the table of the persisted routes. A missing file is
// an empty table; a file that does not parse or holds invalid or
// conflicting routes is logged, renamed to routes.json.bad and also gives
// an empty table.
func (p *Proxy) loadState() (*table, error) {
	path := filepath.Join(p.stateDir, stateFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return newTable(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read routes: %w", err)
	}
	t, err := p.parseState(data)
	if err == nil {
		return t, nil
	}
	p.log.Error("routes file is corrupt; starting with no routes", "path", path, "kept_as", path+badSuffix, "err", err)
	if rerr := os.Rename(path, path+badSuffix); rerr != nil {
		return nil, fmt.Errorf("keep aside corrupt routes file: %w", rerr)
	}
	return newTable(), nil
}

// parseState decodes and checks a state file and builds its table.
func (p *Proxy) parseState(data []byte) (*table, error) {
	var s state
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, err
	}
	if s.Version != stateVersion {
		return nil, fmt.Errorf("unknown version %d", s.Version)
	}
	seen := make(map[string]bool, len(s.Routes))
	for i, r := range s.Routes {
		if err := validRoute(r); err != nil {
			return nil, err
		}
		if seen[r.App] {
			return nil, fmt.Errorf("app %s is listed twice", r.App)
		}
		seen[r.App] = true
		s.Routes[i].Hosts = dedupe(r.Hosts)
	}
	return p.buildTable(s.Routes)
}

// saveState writes the routes of t atomically: a temporary file, synced,
// renamed over the state file, then the directory synced. The file is
// json.Marshal's encoding of a state, put together from the encoding
// each route keeps, so that a change encodes only its own route.
func (p *Proxy) saveState(t *table) error {
	size := 64
	for _, e := range t.apps {
		size += len(e.enc) + 1
	}
	data := make([]byte, 0, size)
	data = append(data, `{"version":`...)
	data = strconv.AppendInt(data, stateVersion, 10)
	data = append(data, `,"routes":[`...)
	for i, app := range t.names {
		if i > 0 {
			data = append(data, ',')
		}
		data = append(data, t.apps[app].enc...)
	}
	data = append(data, "]}\n"...)
	f, err := os.CreateTemp(p.stateDir, stateFile+".tmp-*")
	if err != nil {
		return fmt.Errorf("save routes: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(p.stateDir, stateFile))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("save routes: %w", err)
	}
	if d, err := os.Open(p.stateDir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("save routes: sync directory: %w", err)
		}
	}
	return nil
}
