// Go twins of weft-bench's udp_echo and file_read: the same work, the same
// JSON keys (see bench/weft-bench.c for what each measures).
//
//	go_io_peer udp_echo [N]    N round trips of 64-byte datagrams (net.UDPConn)
//	go_io_peer file_read [N]   N reads of 64 KiB by 64 goroutines (os.File)
//	go_io_peer select [N]      N selects over two unbuffered channels, one fed
//	                           by a goroutine (weft-bench select's twin)
//
// GOMAXPROCS: Go's default (one per core) unless set.
package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	udpClients = 32
	udpPayload = 64
	fileTasks  = 64
	fileChunk  = 65536
	fileMiB    = 16
)

func procStatusKiB(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field+":") {
			f := strings.Fields(line[len(field)+1:])
			if len(f) > 0 {
				v, _ := strconv.ParseInt(f[0], 10, 64)
				return v
			}
		}
	}
	return -1
}

func emit(bench string, n int64, secs float64, extra string) {
	fmt.Printf("{\"runtime\":\"go\",\"bench\":\"%s\",\"n\":%d,\"seconds\":%.6f,\"rss_kib\":%d,\"threads\":%d,%s}\n",
		bench, n, secs, procStatusKiB("VmHWM"), runtime.GOMAXPROCS(0), extra)
}

func udpEcho(n int64) {
	server, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		panic(err)
	}
	addr := server.LocalAddr().(*net.UDPAddr)
	servers := runtime.GOMAXPROCS(0)
	for s := 0; s < servers; s++ {
		go func() {
			buf := make([]byte, 2048)
			for {
				k, from, err := server.ReadFromUDP(buf)
				if err != nil {
					return
				}
				server.WriteToUDP(buf[:k], from)
			}
		}()
	}
	perClient := n / udpClients
	var echoed, lost int64
	var wg sync.WaitGroup
	start := time.Now()
	for c := 0; c < udpClients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				panic(err)
			}
			defer conn.Close()
			out := bytes.Repeat([]byte{'u'}, udpPayload)
			in := make([]byte, 2048)
			var ok, gone int64
			for i := int64(0); i < perClient; i++ {
				binary.LittleEndian.PutUint64(out, uint64(i))
				for {
					if _, err := conn.WriteToUDP(out, addr); err != nil {
						panic(err)
					}
					conn.SetReadDeadline(time.Now().Add(time.Second))
					got := false
					for {
						k, _, err := conn.ReadFromUDP(in)
						if err != nil {
							break // timeout: resend
						}
						if k == udpPayload && bytes.Equal(in[:8], out[:8]) {
							got = true
							break
						}
					}
					if got {
						ok++
						break
					}
					gone++
				}
			}
			atomic.AddInt64(&echoed, ok)
			atomic.AddInt64(&lost, gone)
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	server.Close()
	total := perClient * udpClients
	emit("udp_echo", total, secs, fmt.Sprintf(
		"\"clients\":%d,\"servers\":%d,\"payload\":%d,\"lost\":%d,\"datagrams_per_s\":%.0f,\"ok\":%t",
		udpClients, servers, udpPayload, lost, float64(echoed)/secs, echoed == total))
}

func fileRead(n int64) {
	dir := os.Getenv("TMPDIR")
	if dir == "" {
		dir = "/tmp"
	}
	path := fmt.Sprintf("%s/go-bench-file-%d", dir, os.Getpid())
	if err := os.WriteFile(path, bytes.Repeat([]byte{'f'}, fileMiB<<20), 0o600); err != nil {
		panic(err)
	}
	defer os.Remove(path)
	perTask := n / fileTasks
	var total int64
	var wg sync.WaitGroup
	start := time.Now()
	for t := 0; t < fileTasks; t++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := os.Open(path)
			if err != nil {
				panic(err)
			}
			defer f.Close()
			buf := make([]byte, fileChunk)
			var got int64
			for want := perTask * fileChunk; got < want; {
				room := want - got
				if room > fileChunk {
					room = fileChunk
				}
				k, err := f.Read(buf[:room])
				if k == 0 || err != nil {
					f.Seek(0, 0)
					continue
				}
				got += int64(k)
			}
			atomic.AddInt64(&total, got)
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	want := perTask * fileTasks
	emit("file_read", want, secs, fmt.Sprintf(
		"\"tasks\":%d,\"chunk\":%d,\"file_mib\":%d,\"mib_per_s\":%.1f,\"ok\":%t",
		fileTasks, fileChunk, fileMiB, float64(total)/float64(1<<20)/secs, total == want*fileChunk))
}

func selectBench(n int64) {
	quiet := make(chan int64)
	fed := make(chan int64)
	go func() {
		for i := int64(0); i < n; i++ {
			fed <- i
		}
		close(fed)
	}()
	var sum, got int64
	start := time.Now()
	for i := int64(0); i < n; i++ {
		select {
		case v := <-quiet:
			sum += v
		case v := <-fed:
			sum += v
			got++
		}
	}
	secs := time.Since(start).Seconds()
	emit("select", n, secs, fmt.Sprintf("\"ns_per_op\":%.1f,\"ok\":%t",
		secs*1e9/float64(n), got == n && sum == n*(n-1)/2))
}

func main() {
	if len(os.Args) < 2 || len(os.Args) > 3 {
		fmt.Fprintln(os.Stderr, "usage: go_io_peer udp_echo [N] | file_read [N] | select [N]")
		os.Exit(2)
	}
	n := int64(-1)
	if len(os.Args) == 3 {
		v, err := strconv.ParseInt(os.Args[2], 10, 64)
		if err != nil {
			fmt.Fprintln(os.Stderr, "go_io_peer: N must be an integer")
			os.Exit(2)
		}
		n = v
	}
	switch os.Args[1] {
	case "udp_echo":
		if n < 0 {
			n = 200000
		}
		udpEcho(n)
	case "file_read":
		if n < 0 {
			n = 32768
		}
		fileRead(n)
	case "select":
		if n < 0 {
			n = 1000000
		}
		selectBench(n)
	default:
		fmt.Fprintln(os.Stderr, "go_io_peer: unknown benchmark", os.Args[1])
		os.Exit(2)
	}
}
