// udpecho answers each UDP datagram on the port given with "echo: " and
// the datagram; the network tests put it in their image.
package main

import (
	"net"
	"os"
)

func main() {
	pc, err := net.ListenPacket("udp", ":"+os.Args[1])
	if err != nil {
		panic(err)
	}
	buf := make([]byte, 65536)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		pc.WriteTo(append([]byte("echo: "), buf[:n]...), addr)
	}
}
