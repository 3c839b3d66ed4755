package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// The network scenarios: a container start on the default bridge (and
// without a network, for the bridge's share of it), and bulk TCP
// throughput from a container, read from the host at the container's own
// address and through a port published on 127.0.0.1.

// streamSize is what one throughput sample transfers.
const streamSize = 512 << 20

func init() {
	register(Scenario{
		Section: "Network", Name: "docker run --rm busybox true (default bridge)", Unit: "ms", Target: "≤ 120 ms",
		Run: func(b *Bench, e *Engine) ([]float64, error) { return runTrue(b, e) },
	})
	register(Scenario{
		Section: "Network", Name: "docker run --rm --network none busybox true", Unit: "ms", Target: "–",
		Run: func(b *Bench, e *Engine) ([]float64, error) { return runTrue(b, e, "--network", "none") },
	})
	register(Scenario{
		Section: "Network", Name: "TCP from a container, at its own address", Unit: "MB/s", Target: "–",
		Run: func(b *Bench, e *Engine) ([]float64, error) {
			direct, _, err := throughput(b, e)
			return direct, err
		},
	})
	register(Scenario{
		Section: "Network", Name: "TCP from a container, through a port published on 127.0.0.1", Unit: "MB/s", Target: "–",
		Run: func(b *Bench, e *Engine) ([]float64, error) {
			_, published, err := throughput(b, e)
			return published, err
		},
	})
	register(Scenario{
		Section: "Network", Name: "published port throughput vs the container's address", Unit: "%", Target: "≥ 80 %",
		Run: func(b *Bench, e *Engine) ([]float64, error) {
			direct, published, err := throughput(b, e)
			if err != nil {
				return nil, err
			}
			var ratios []float64
			for i := range direct {
				ratios = append(ratios, 100*published[i]/direct[i])
			}
			return ratios, nil
		},
	})
}

func runTrue(b *Bench, e *Engine, flags ...string) ([]float64, error) {
	ref, err := busybox(b, e)
	if err != nil {
		return nil, err
	}
	args := append(append(append([]string{"run", "--rm"}, runFlags[e.Name]...), flags...), ref, "true")
	e.Time(2, args...) // warm caches (and bring the bridge up), not counted
	return e.Time(b.N, args...)
}

// throughputs caches one measurement per engine: the three throughput
// scenarios report the same samples.
var throughputs = map[string][2][]float64{}

// throughput measures streamSize bytes of zeros sent by busybox dd (1 MB
// writes; head's small ones would measure itself) behind busybox nc in a
// container, read at the container's address and through its published
// port, alternately, b.N times each.
func throughput(b *Bench, e *Engine) (direct, published []float64, err error) {
	if t, ok := throughputs[e.Name]; ok {
		return t[0], t[1], nil
	}
	ref, err := busybox(b, e)
	if err != nil {
		return nil, nil, err
	}
	args := append(append([]string{"run", "-d", "-p", "127.0.0.1::9000"}, runFlags[e.Name]...), ref,
		"nc", "-ll", "-p", "9000", "-e", "dd", "if=/dev/zero", "bs=1M", fmt.Sprintf("count=%d", streamSize>>20))
	r := e.Docker.Run(nil, args...)
	if r.Code != 0 {
		return nil, nil, fmt.Errorf("run: %s", strings.TrimSpace(r.Stderr))
	}
	id := strings.TrimSpace(r.Stdout)
	defer e.Docker.Run(nil, "rm", "-f", id)
	var info []struct {
		NetworkSettings struct {
			Ports    map[string][]struct{ HostIp, HostPort string }
			Networks map[string]struct{ IPAddress string }
		}
	}
	if err := json.Unmarshal([]byte(e.Docker.Must("inspect", id)), &info); err != nil || len(info) != 1 {
		return nil, nil, fmt.Errorf("inspect: %v", err)
	}
	var addr string
	for _, n := range info[0].NetworkSettings.Networks {
		addr = net.JoinHostPort(n.IPAddress, "9000")
	}
	bs := info[0].NetworkSettings.Ports["9000/tcp"]
	if addr == "" || len(bs) == 0 {
		return nil, nil, fmt.Errorf("no address or published port: %+v", info[0].NetworkSettings)
	}
	pub := net.JoinHostPort("127.0.0.1", bs[0].HostPort)
	if _, err := readAll(addr); err != nil { // warm up, and wait for nc
		return nil, nil, err
	}
	for i := 0; i < b.N; i++ {
		d, err := readAll(addr)
		if err != nil {
			return nil, nil, err
		}
		p, err := readAll(pub)
		if err != nil {
			return nil, nil, err
		}
		direct, published = append(direct, d), append(published, p)
	}
	throughputs[e.Name] = [2][]float64{direct, published}
	return direct, published, nil
}

// readAll reads one stream from addr and returns its rate in MB/s.
func readAll(addr string) (float64, error) {
	var c net.Conn
	var err error
	for i := 0; i < 50; i++ {
		if c, err = net.Dial("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return 0, err
	}
	defer c.Close()
	began := time.Now()
	n, err := io.Copy(io.Discard, c)
	if err != nil {
		return 0, err
	}
	if n != streamSize {
		return 0, fmt.Errorf("%s: read %d bytes, want %d", addr, n, streamSize)
	}
	return float64(n) / (1 << 20) / time.Since(began).Seconds(), nil
}
