package proxy_test

import (
	"github.com/berthhq/berth/engine"
	"github.com/berthhq/berth/proxy"
)

// The client is the engine's Router.
var _ engine.Router = (*proxy.Client)(nil)
