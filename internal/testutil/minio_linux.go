package testutil

import (
	"os"
	"syscall"
)

// sysProcAttr puts MinIO in its own process group, so that killGroup reaches
// anything it forks, and has the kernel kill it should the test binary die
// without running its cleanups (a test timeout panics past them).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func killGroup(p *os.Process) {
	syscall.Kill(-p.Pid, syscall.SIGKILL)
}
