//go:build linux

package engineapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/berth-dev/berth/runtime/container"
	"github.com/berth-dev/berth/runtime/errdefs"
)

func createRequest(body []byte) *http.Request {
	r, _ := http.NewRequest(http.MethodPost, "http://berth/containers/create", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return r
}

func TestDecodeCreate(t *testing.T) {
	for body, want := range map[string]string{
		`{"Image":"busybox","Cmd":["true"],"HostConfig":{"Memory":33554432}}`: "",
		``:                      "config cannot be empty",
		`{"Image":`:             "invalid JSON",
		`{"Image":"a"} {"x":1}`: "trailing data",
		`{"Image":1}`:           "invalid JSON",
		`{"HostConfig":{"Memory":"lots"},"Image":"x"}`: "invalid JSON",
		`[1,2,3]`: "invalid JSON",
	} {
		req, err := decodeCreate(createRequest([]byte(body)))
		switch {
		case want == "" && (err != nil || req.Config.Image != "busybox" || req.HostConfig.Memory != 32<<20):
			t.Errorf("%s: %v %+v", body, err, req)
		case want != "" && (!errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: got %v, want InvalidArgument containing %q", body, err, want)
		}
	}
	big := append([]byte(`{"Image":"busybox","Env":["`), bytes.Repeat([]byte("x"), maxJSONBody+10)...)
	big = append(big, `"]}`...)
	if _, err := decodeCreate(createRequest(big)); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("oversized body: %v", err)
	}
}

// FuzzDecodeCreate: any body yields a request with a config, or a 400;
// and a decoded request goes on through the create's validation and the
// spec a start would build (container.CheckCreate, libcontainer's
// conversion included): a 400 or accepted, never a panic, never a 500.
func FuzzDecodeCreate(f *testing.F) {
	f.Add([]byte(`{"Image":"busybox","Cmd":["echo","hi"],"Tty":true,"HostConfig":{"Memory":1,"PidsLimit":5,"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":2}}}`))
	f.Add([]byte(`{"Image":"x","ExposedPorts":{"80/tcp":{}},"HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"8080"}]}}}`))
	f.Add([]byte(`{"Image":"x","NetworkingConfig":{"EndpointsConfig":{"n":{}}}}`))
	f.Add([]byte(`{"Image":"x","HostConfig":{"SecurityOpt":["no-new-privileges","seccomp=unconfined"],"CapAdd":["NET_ADMIN"],"CapDrop":["ALL"],"Init":true}}`))
	f.Add([]byte(`{"Image":"x","HostConfig":{"SecurityOpt":["seccomp={\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":[{\"names\":[\"read\"],\"action\":\"SCMP_ACT_ALLOW\",\"args\":[{\"index\":0,\"value\":1,\"op\":\"SCMP_CMP_EQ\"}]}]}"]}}`))
	f.Add([]byte(`{"Image":"x","HostConfig":{"Devices":[{"PathOnHost":"/dev/null","PathInContainer":"/dev/n","CgroupPermissions":"rw"}],"DeviceCgroupRules":["c 1:3 rwm","a *:* m"],"OomScoreAdj":-500}}`))
	f.Add([]byte(`{"Image":"x","HostConfig":{"Privileged":true,"ReadonlyRootfs":true,"Tmpfs":{"/run":"size=1m"},"Ulimits":[{"Name":"nofile","Soft":10,"Hard":20}],"Sysctls":{"net.ipv4.ip_forward":"1"}}}`))
	f.Add([]byte(`{"Image":"x","HostConfig":{"UsernsMode":"host","Runtime":"runc","PidMode":"host","IpcMode":"shareable","NanoCpus":500000000,"CpusetCpus":"0","ShmSize":1048576}}`))
	f.Add([]byte(`{"Image":"x","Healthcheck":{"Test":["CMD","true"],"Interval":1000000},"HostConfig":{"LogConfig":{"Type":"json-file","Config":{"max-size":"1k","max-file":"2"}}}}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeCreate(createRequest(body))
		if err != nil {
			if statusOf(err) != http.StatusBadRequest {
				t.Fatalf("status %d for %q: %v", statusOf(err), body, err)
			}
			return
		}
		if req.Config == nil {
			t.Fatalf("accepted without a config: %q", body)
		}
		if _, err := json.Marshal(req); err != nil {
			t.Fatalf("decoded request does not encode again: %v", err)
		}
		if err := container.CheckCreate(req.Config, req.HostConfig); err != nil && statusOf(err) != http.StatusBadRequest {
			t.Fatalf("check: status %d for %q: %v", statusOf(err), body, err)
		}
	})
}
