//go:build linux

package engineapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	ctr "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/network"

	"github.com/berth-dev/berth/runtime/errdefs"
)

func versioned(v string) *http.Request {
	r, _ := http.NewRequest(http.MethodGet, "http://berth/v"+v+"/x", nil)
	return r.WithContext(context.WithValue(r.Context(), apiVersionKey{}, v))
}

func TestWrappedAddsOnlyMissingFields(t *testing.T) {
	b, err := json.Marshal(wrapped{base: map[string]any{"A": 1, "B": nil, "N": map[string]any{"X": 1}},
		extra: map[string]any{"A": 2, "B": 3, "C": 4, "N": map[string]any{"X": 2, "Y": 5}}, omit: []string{"Z"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"A":1,"B":3,"C":4,"N":{"X":1,"Y":5}}`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestCreateCompatMacAddress(t *testing.T) {
	req := &ctr.CreateRequest{Config: &ctr.Config{}, HostConfig: &ctr.HostConfig{}}
	if _, err := createCompat(versioned("1.41"), req, "02:42:ac:11:00:99"); err != nil {
		t.Fatal(err)
	}
	if ep := req.NetworkingConfig.EndpointsConfig[network.NetworkBridge]; ep == nil || ep.MacAddress.String() != "02:42:ac:11:00:99" {
		t.Fatalf("1.41: the container-wide MAC was not moved to the bridge's endpoint: %+v", req.NetworkingConfig)
	}
	req = &ctr.CreateRequest{Config: &ctr.Config{}, HostConfig: &ctr.HostConfig{NetworkMode: "host"}}
	if _, err := createCompat(versioned("1.41"), req, "02:42:ac:11:00:99"); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("1.41, host network: %v", err)
	}
	req = &ctr.CreateRequest{Config: &ctr.Config{}}
	if _, err := createCompat(versioned("1.52"), req, "02:42:ac:11:00:99"); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("1.52: %v", err)
	}
	req = &ctr.CreateRequest{Config: &ctr.Config{}, NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{"a": {}, "b": {}}}}
	if _, err := createCompat(versioned("1.43"), req, ""); err == nil || !strings.Contains(err.Error(), "multiple network endpoints") {
		t.Fatalf("1.43, two networks: %v", err)
	}
	if _, err := createCompat(versioned("1.44"), req, ""); err != nil {
		t.Fatalf("1.44, two networks: %v", err)
	}
}

func TestImageListCompat(t *testing.T) {
	list := func() []image.Summary { return []image.Summary{{ID: "sha256:1", Size: 7, Containers: 2}} }
	b, _ := json.Marshal(imageListCompat(versioned("1.41"), list()))
	for _, want := range []string{`"RepoTags":["\u003cnone\u003e:\u003cnone\u003e"]`, `"Containers":-1`, `"VirtualSize":7`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("1.41: %s lacks %s", b, want)
		}
	}
	b, _ = json.Marshal(imageListCompat(versioned("1.52"), list()))
	for _, bad := range []string{"VirtualSize", "<none>", `"Containers":-1`} {
		if strings.Contains(string(b), bad) {
			t.Errorf("1.52: %s has %s", b, bad)
		}
	}
}

func TestInspectCompatLegacyNetworkSettings(t *testing.T) {
	resp := func() *ctr.InspectResponse {
		return &ctr.InspectResponse{ID: "0123456789abcdef", Config: &ctr.Config{Hostname: "h"}, NetworkSettings: &ctr.NetworkSettings{
			Networks: map[string]*network.EndpointSettings{network.NetworkBridge: {EndpointID: "e"}, "user": {}}}}
	}
	b, _ := json.Marshal(inspectCompat(versioned("1.41"), resp(), "02:42:ac:11:00:99"))
	for _, want := range []string{`"EndpointID":"e"`, `"MacAddress":"02:42:ac:11:00:99"`, `"Aliases":["0123456789ab","h"]`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("1.41: %s lacks %s", b, want)
		}
	}
	b, _ = json.Marshal(inspectCompat(versioned("1.52"), resp(), "02:42:ac:11:00:99"))
	for _, bad := range []string{"02:42:ac:11:00:99", "0123456789ab\""} {
		if strings.Contains(string(b), bad) {
			t.Errorf("1.52: %s has %s", b, bad)
		}
	}
	var m struct{ NetworkSettings map[string]any }
	json.Unmarshal(b, &m)
	if _, ok := m.NetworkSettings["EndpointID"]; ok {
		t.Errorf("1.52: the bridge's settings at the top of NetworkSettings: %s", b)
	}
}
