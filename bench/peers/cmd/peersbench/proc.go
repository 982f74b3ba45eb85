package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// procs starts processes in their own process groups and stops them by PID.
// Every PID is also appended to pidFile, so run.sh's trap can stop what a
// crashed harness left behind.
type procs struct {
	pidFile string
	nice    int // niceness to give started systems (relative to ours)

	mu   sync.Mutex
	cmds []*exec.Cmd
	done map[*exec.Cmd]chan struct{}
	logs map[*exec.Cmd]string
}

// ownNiceness is this process's nice value (run.sh raises the harness and the
// emulator; the systems under test run at the default 0).
func ownNiceness() int {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	fs := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(fs) < 17 {
		return 0
	}
	n, _ := strconv.Atoi(fs[16]) // field 19: nice
	return n
}

// start runs argv with output to logPath. uid, if not 0, is the uid (and
// gid) to run as; a system under test (uid != 0) is also reset to niceness 0,
// a harness helper (uid 0) inherits ours.
func (p *procs) start(logPath string, uid int, home string, argv ...string) (*exec.Cmd, error) {
	system := uid != 0
	if system && p.nice != 0 {
		argv = append([]string{"nice", "-n", strconv.Itoa(p.nice)}, argv...)
	}
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if uid != 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}
		cmd.Env = append(os.Environ(), "HOME="+home)
		cmd.Dir = home
	}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); log.Close(); close(done) }()
	p.mu.Lock()
	p.cmds = append(p.cmds, cmd)
	if p.done == nil {
		p.done = map[*exec.Cmd]chan struct{}{}
	}
	p.done[cmd] = done
	if p.logs == nil {
		p.logs = map[*exec.Cmd]string{}
	}
	p.logs[cmd] = logPath
	p.mu.Unlock()
	if p.pidFile != "" {
		if f, err := os.OpenFile(p.pidFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintf(f, "%d %s\n", cmd.Process.Pid, argv[0])
			f.Close()
		}
	}
	return cmd, nil
}

// firstExited returns the log of a started process (other than skip) that
// has ended, or "".
func (p *procs) firstExited(skip *exec.Cmd) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.cmds {
		if c == skip {
			continue
		}
		select {
		case <-p.done[c]:
			return p.logs[c]
		default:
		}
	}
	return ""
}

// exited reports whether cmd has ended.
func (p *procs) exited(cmd *exec.Cmd) bool {
	p.mu.Lock()
	ch := p.done[cmd]
	p.mu.Unlock()
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to each process group, waits up to grace, then SIGKILLs.
func (p *procs) stop(grace time.Duration, cmds ...*exec.Cmd) {
	p.mu.Lock()
	if len(cmds) == 0 {
		cmds = p.cmds
	}
	var waits []chan struct{}
	for _, c := range cmds {
		syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
		waits = append(waits, p.done[c])
	}
	p.mu.Unlock()
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
wait:
	for _, w := range waits {
		select {
		case <-w:
		case <-deadline.C:
			for _, c := range cmds {
				syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
			}
			for _, w := range waits {
				<-w
			}
			break wait
		}
	}
	p.mu.Lock()
	keep := p.cmds[:0]
	for _, c := range p.cmds {
		select {
		case <-p.done[c]:
			delete(p.done, c)
		default:
			keep = append(keep, c)
		}
	}
	p.cmds = keep
	p.mu.Unlock()
}

// waitLine waits until r yields a line containing want.
func waitLine(ctx context.Context, r io.Reader, want string) error {
	found := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if strings.Contains(sc.Text(), want) {
				found <- nil
				io.Copy(io.Discard, r)
				return
			}
		}
		found <- fmt.Errorf("output ended before %q", want)
	}()
	select {
	case err := <-found:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retryUntil calls f every interval until it returns nil or ctx ends; the
// error names what was being waited for and the last failure.
func retryUntil(ctx context.Context, what string, interval time.Duration, f func() error) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	var last error
	for {
		if last = f(); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last: %v)", what, context.Cause(ctx), last)
		case <-t.C:
		}
	}
}
