// Package buildprogress reads the answer of POST /build?version=2, a
// BuildKit build through the Engine API as dockerd and Berth's engine
// stream it: BuildKit's status updates ("moby.buildkit.trace" messages,
// each a base64 StatusResponse), shown here as `docker build
// --progress=plain` shows them, then the image ID ("moby.image.id") or the
// build's error.
package buildprogress

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	controlapi "github.com/moby/buildkit/api/services/control"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/util/progress/progressui"
	"google.golang.org/protobuf/proto"
)

// BuildError is a build's failure as the engine reported it.
type BuildError struct{ Message string }

func (e *BuildError) Error() string { return e.Message }

// message is one item of the JSON stream.
type message struct {
	ID          string          `json:"id"`
	Aux         json.RawMessage `json:"aux"`
	Stream      string          `json:"stream"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
	Error string `json:"error"`
}

// Read consumes body until the build ends, writing its progress as plain
// text to out (nil: discarded). It returns the image ID, or the build's
// error as a *BuildError.
func Read(ctx context.Context, body io.Reader, out io.Writer) (string, error) {
	if out == nil {
		out = io.Discard
	}
	display, err := progressui.NewDisplay(out, progressui.PlainMode)
	if err != nil {
		return "", err
	}
	ch := make(chan *client.SolveStatus, 16)
	shown := make(chan error, 1)
	go func() {
		_, err := display.UpdateFrom(context.WithoutCancel(ctx), ch)
		shown <- err
	}()
	id, err := decode(body, ch, out)
	close(ch)
	if derr := <-shown; err == nil && derr != nil {
		err = derr
	}
	return id, err
}

func decode(body io.Reader, ch chan<- *client.SolveStatus, out io.Writer) (string, error) {
	dec := json.NewDecoder(body)
	id := ""
	for {
		var m message
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				if id == "" {
					return "", errors.New("the build ended without an image ID")
				}
				return id, nil
			}
			return "", fmt.Errorf("read build output: %w", err)
		}
		switch {
		case m.ErrorDetail != nil:
			return "", &BuildError{Message: m.ErrorDetail.Message}
		case m.Error != "":
			return "", &BuildError{Message: m.Error}
		case m.ID == "moby.buildkit.trace":
			var raw []byte
			if err := json.Unmarshal(m.Aux, &raw); err != nil {
				return "", fmt.Errorf("build trace: %w", err)
			}
			var resp controlapi.StatusResponse
			if err := proto.Unmarshal(raw, &resp); err != nil {
				return "", fmt.Errorf("build trace: %w", err)
			}
			ch <- client.NewSolveStatus(&resp)
		case m.ID == "moby.image.id":
			var r struct{ ID string }
			if err := json.Unmarshal(m.Aux, &r); err != nil {
				return "", fmt.Errorf("image ID: %w", err)
			}
			id = r.ID
		case m.Stream != "":
			io.WriteString(out, m.Stream)
		}
	}
}
