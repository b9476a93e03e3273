// Command echo is a tiny TCP echo server and client that testhost's tests run
// on test hosts to see which hosts can reach which.
//
//	echo -listen 0.0.0.0:7000 -name node-01
//	    prints "listening <addr>" once it accepts connections, then answers
//	    each line it receives with "<name>: <line>".
//	echo -connect 10.77.1.11:7000 -msg hello -timeout 1s
//	    sends one line, prints the answer and exits 0; exits 1 on any error,
//	    including no answer within the timeout.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"time"
)

func main() {
	listen := flag.String("listen", "", "address to serve on")
	name := flag.String("name", "echo", "name the server puts before each answer")
	connect := flag.String("connect", "", "address of a server to send one line to")
	msg := flag.String("msg", "ping", "the line the client sends")
	timeout := flag.Duration("timeout", 2*time.Second, "the client's limit for connecting and the answer")
	flag.Parse()

	var err error
	switch {
	case *listen != "":
		err = serve(*listen, *name)
	case *connect != "":
		err = ask(*connect, *msg, *timeout)
	default:
		err = fmt.Errorf("give -listen or -connect")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
}

func serve(addr, name string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Printf("listening %s\n", ln.Addr())
	for {
		conn, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer conn.Close()
			sc := bufio.NewScanner(conn)
			for sc.Scan() {
				fmt.Fprintf(conn, "%s: %s\n", name, sc.Text())
			}
		}()
	}
}

func ask(addr, msg string, timeout time.Duration) error {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	if _, err := fmt.Fprintln(conn, msg); err != nil {
		return err
	}
	answer, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("reading the answer from %s: %w", addr, err)
	}
	fmt.Print(answer)
	return nil
}
