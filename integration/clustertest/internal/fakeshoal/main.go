// Command fakeshoal stands in for the shoal binary in clustertest's own
// tests, so that the helpers can be tested without a real daemon. It speaks
// only the little that the helpers rely on:
//
//	fakeshoal daemon --data-dir DIR -H unix:///PATH.sock --hostname NAME [--exit-at-once]
//	    serves the socket until SIGTERM (then removes it and exits 0); it
//	    counts its starts in DIR/starts.
//	fakeshoal -H unix:///PATH.sock ARGS...
//	    asks the daemon and prints its answer:
//	    "hostname=NAME pid=PID netns=INODE starts=N args=ARGS".
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	var host, dataDir, hostname string
	var exitAtOnce bool
	var rest []string
	args := os.Args[1:]
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "-H":
			i++
			host = value(args, i)
		case "--data-dir":
			i++
			dataDir = value(args, i)
		case "--hostname":
			i++
			hostname = value(args, i)
		case "--exit-at-once":
			exitAtOnce = true
		default:
			rest = append(rest, args[i])
		}
	}
	sock := strings.TrimPrefix(host, "unix://")
	var err error
	if len(rest) > 0 && rest[0] == "daemon" {
		if exitAtOnce {
			fmt.Fprintln(os.Stderr, "fakeshoal: exiting at once, as asked")
			os.Exit(2)
		}
		err = daemon(sock, dataDir, hostname)
	} else {
		err = ask(sock, strings.Join(rest, " "))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakeshoal:", err)
		os.Exit(1)
	}
}

func value(args []string, i int) string {
	if i >= len(args) {
		fmt.Fprintf(os.Stderr, "fakeshoal: %s needs a value\n", args[i-1])
		os.Exit(2)
	}
	return args[i]
}

func daemon(sock, dataDir, hostname string) error {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	starts := 1
	if b, err := os.ReadFile(filepath.Join(dataDir, "starts")); err == nil {
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		starts = n + 1
	}
	if err := os.WriteFile(filepath.Join(dataDir, "starts"), []byte(strconv.Itoa(starts)), 0o600); err != nil {
		return err
	}
	netns, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		return err
	}
	// Come up a little late, so that callers must wait for the socket.
	time.Sleep(200 * time.Millisecond)
	os.Remove(sock) // left by a killed predecessor
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "fakeshoal: %s serving %s in %s\n", hostname, sock, netns)

	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	go func() {
		<-term
		fmt.Fprintln(os.Stderr, "fakeshoal: SIGTERM, shutting down")
		os.Remove(sock)
		os.Exit(0)
	}()
	for {
		conn, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer conn.Close()
			line, _ := bufio.NewReader(conn).ReadString('\n')
			fmt.Fprintf(conn, "hostname=%s pid=%d netns=%s starts=%d args=%s\n",
				hostname, os.Getpid(), netns, starts, strings.TrimSpace(line))
		}()
	}
}

func ask(sock, request string) error {
	conn, err := net.DialTimeout("unix", sock, 2*time.Second)
	if err != nil {
		return fmt.Errorf("cannot reach the daemon: %w", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintln(conn, request)
	answer, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	fmt.Print(answer)
	return nil
}
