//go:build linux

package network

import (
	"testing"
	"time"

	ctr "github.com/moby/moby/api/types/container"
)

// BenchmarkJoinLeave is a container's whole network life on the default
// bridge: namespace, veth, address, route, hosts and resolv.conf, then the
// teardown. `make bench` measures it end to end; this isolates it for
// profiling (go test -bench JoinLeave -cpuprofile).
func BenchmarkJoinLeave(b *testing.B) {
	for _, mode := range []string{"bridge", "none"} {
		b.Run(mode, func(b *testing.B) {
			m := newManager(b)
			var joined, left time.Duration
			join := func(i int) {
				id := containerID(i)
				t0 := time.Now()
				if _, err := m.Join(JoinRequest{ID: id, Name: "c", Hostname: "c", Mode: ctr.NetworkMode(mode)}); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				m.Leave(id)
				joined, left = joined+t1.Sub(t0), left+time.Since(t1)
			}
			join(0) // the bridge comes up on the first join
			joined, left = 0, 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				join(i)
			}
			b.ReportMetric(float64(joined.Microseconds())/1000/float64(b.N), "join-ms")
			b.ReportMetric(float64(left.Microseconds())/1000/float64(b.N), "leave-ms")
		})
	}
}
