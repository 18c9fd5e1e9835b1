package main

// The benchmarks: the same workload and figures as tests/bench/system_bench.cc measures for the
// step executor, run against a Temporal dev server and worker on the same broker.

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/proto"

	"sequences.local/bench/peers/temporal/pb"
)

// ---- child processes ----

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

func startProc(name, logPath string, argv ...string) (*proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	// The children die with the driver.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(p.done) }()
	return p, nil
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill is kill -9.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// terminate asks it to stop (SIGTERM), and kills it after 20 s.
func (p *proc) terminate() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.kill()
	}
}

// memory reads VmRSS and VmHWM (peak) of a process, in MiB.
func memory(pid int) (rss, peak float64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(fields[1], 64)
		switch fields[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			peak = kb / 1024
		}
	}
	return rss, peak
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ---- the dev server and the worker ----

type devEnv struct {
	dir                string
	port, http, metric int
	server, worker     *proc
	topic              string
}

func (t *devEnv) addr() string { return fmt.Sprintf("127.0.0.1:%d", t.port) }

// startServer starts `temporal server start-dev` on the SQLite file in t.dir (created on the
// first start, reopened after a kill).
func (t *devEnv) startServer() error {
	var err error
	t.server, err = startProc("server", filepath.Join(t.dir, "server.log"), *temporalBin,
		"server", "start-dev", "--headless", "--ip=127.0.0.1", "--log-level=error",
		fmt.Sprint("--port=", t.port), fmt.Sprint("--http-port=", t.http),
		fmt.Sprint("--metrics-port=", t.metric), "--db-filename="+filepath.Join(t.dir, "temporal.db"),
		// Durable against a process crash (kill -9), like the broker's page cache and the
		// executor's RocksDB WAL; no fsync per commit (README.md, "Dev server").
		"--sqlite-pragma=journal_mode=wal", "--sqlite-pragma=synchronous=normal")
	return err
}

func (t *devEnv) startWorker() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	t.worker, err = startProc("worker", filepath.Join(t.dir, "worker.log"),
		append([]string{self}, workerArgs(t.addr(), t.topic)...)...)
	return err
}

func (t *devEnv) stop() {
	for _, p := range []*proc{t.worker, t.server} {
		if p != nil && p.running() {
			p.terminate()
		}
	}
}

func (t *devEnv) memory() map[string]float64 {
	f := map[string]float64{}
	for _, p := range []*proc{t.server, t.worker} {
		rss, peak := memory(p.cmd.Process.Pid)
		f[p.name+"_rss_mib"], f[p.name+"_peak_rss_mib"] = rss, peak
		f["rss_mib"] += rss
		f["peak_rss_mib"] += peak
	}
	var db int64
	for _, suffix := range []string{"", "-wal"} {
		if st, err := os.Stat(filepath.Join(t.dir, "temporal.db"+suffix)); err == nil {
			db += st.Size()
		}
	}
	f["sqlite_mib"] = float64(db) / (1 << 20)
	return f
}

// newTemporal makes a fresh directory, a task topic on the broker, and starts the dev server.
func newTemporal(name string) (*devEnv, client.Client, error) {
	stamp := time.Now().UnixMilli()
	t := &devEnv{
		dir:  filepath.Join(*workDir, fmt.Sprintf("temporal.%s.%d", name, stamp)),
		port: freePort(), http: freePort(), metric: freePort(),
		topic: fmt.Sprintf("bench.temporal-%s.%d.task-events", name, stamp),
	}
	if err := os.MkdirAll(t.dir, 0o755); err != nil {
		return nil, nil, err
	}
	if err := createTopic(t.topic); err != nil {
		return nil, nil, err
	}
	if err := t.startServer(); err != nil {
		return nil, nil, err
	}
	c, err := dial(t.addr(), 2*time.Minute)
	if err != nil {
		t.stop()
		return nil, nil, err
	}
	return t, c, nil
}

// ---- Kafka ----

func createTopic(name string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(*bootstrap, ",")...))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := ctxTimeout(30 * time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, int32(*partitions), 1, nil, name)
	if err != nil {
		return err
	}
	return resp.Err
}

type sighting struct {
	id               string
	visible, decided time.Time
}

// watcher reads the task topic (read_committed) from the start and records when each first
// sighting of a step's TaskCreated became visible, like system_bench.cc's Watcher.
type watcher struct {
	cl   *kgo.Client
	step string
	mu   sync.Mutex
	seen []sighting
	ids  map[string]bool
	stop chan struct{}
	done chan struct{}
}

func newWatcher(topicName, step string) (*watcher, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(*bootstrap, ",")...),
		kgo.ConsumeTopics(topicName), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		return nil, err
	}
	w := &watcher{cl: cl, step: step, ids: map[string]bool{}, stop: make(chan struct{}),
		done: make(chan struct{})}
	go w.run()
	return w, nil
}

func (w *watcher) run() {
	defer close(w.done)
	for {
		select {
		case <-w.stop:
			return
		default:
		}
		ctx, cancel := ctxTimeout(200 * time.Millisecond)
		fetches := w.cl.PollFetches(ctx)
		cancel()
		now := time.Now()
		fetches.EachRecord(func(r *kgo.Record) {
			var e pb.Envelope
			if proto.Unmarshal(r.Value, &e) != nil || e.GetTaskCreated().GetStepId() != w.step {
				return
			}
			w.mu.Lock()
			defer w.mu.Unlock()
			if !w.ids[e.EventId] {
				w.ids[e.EventId] = true
				w.seen = append(w.seen, sighting{e.EventId, now, e.OccurredAt.AsTime()})
			}
		})
	}
}

func (w *watcher) close() {
	close(w.stop)
	<-w.done
	w.cl.Close()
}

func (w *watcher) snapshot() []sighting {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]sighting(nil), w.seen...)
}

func (w *watcher) snapshotIDs() map[string]time.Time {
	out := map[string]time.Time{}
	for _, s := range w.snapshot() {
		out[s.id] = s.visible
	}
	return out
}

// waitFor waits until n steps were seen; an error on timeout or when one of procs exited.
func (w *watcher) waitFor(n int, timeout time.Duration, procs ...*proc) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if len(w.snapshot()) >= n {
			return nil
		}
		for _, p := range procs {
			if !p.running() {
				return fmt.Errorf("%s exited; %d of %d steps seen", p.name, len(w.snapshot()), n)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("timed out: %d of %d steps seen", len(w.snapshot()), n)
}

// ---- figures ----

func perSecond(seen []sighting) []float64 {
	if len(seen) == 0 {
		return nil
	}
	first := seen[0].visible
	for _, s := range seen {
		if s.visible.Before(first) {
			first = s.visible
		}
	}
	var out []float64
	for _, s := range seen {
		i := int(s.visible.Sub(first).Seconds())
		for len(out) <= i {
			out = append(out, 0)
		}
		out[i]++
	}
	return out
}

// rate: records per second from `from` until the last became visible.
func rate(seen []sighting, from time.Time) map[string]float64 {
	last := from
	for _, s := range seen {
		if s.visible.After(last) {
			last = s.visible
		}
	}
	secs := max(last.Sub(from).Seconds(), 1e-9)
	return map[string]float64{"records": float64(len(seen)), "seconds": secs,
		"records_per_s": float64(len(seen)) / secs}
}

func summary(f map[string]float64, prefix string, ms []float64) {
	sort.Float64s(ms)
	at := func(p float64) float64 {
		if len(ms) == 0 {
			return 0
		}
		return ms[min(len(ms)-1, int(p/100*float64(len(ms))))]
	}
	f[prefix+"_p50"], f[prefix+"_p99"], f[prefix+"_max"] = at(50), at(99), at(100)
	f[prefix+"_count"] = float64(len(ms))
}

// ---- the workload ----

func enrollment(i int, steps []Step) Enrollment {
	return Enrollment{
		EnrollmentID:  fmt.Sprintf("seq/bench/deal/%d", i),
		CompanyID:     "bench",
		CorrelationID: fmt.Sprintf("req-%d", i),
		ItemKey:       fmt.Sprintf("bench/deal/%d", i),
		SequenceID:    "seq",
		OwnerID:       "u1",
		Steps:         steps,
		LocalActivity: *localAct,
	}
}

func activity(id string, delay time.Duration) Step {
	return Step{ID: id, Delay: delay, ActivityType: "call", Subject: "Call"}
}

// startAll starts one workflow per enrollment with *starters concurrent calls, retrying a call
// the server refuses (e.g. while it is still starting).
func startAll(c client.Client, from, to int, steps []Step) error {
	var next atomic.Int64
	next.Store(int64(from))
	var wg sync.WaitGroup
	errs := make(chan error, *starters)
	for range *starters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= to {
					return
				}
				e := enrollment(i, steps)
				var err error
				for attempt := 0; attempt < 20; attempt++ {
					ctx, cancel := ctxTimeout(30 * time.Second)
					_, err = c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
						ID: e.EnrollmentID, TaskQueue: *taskQueue,
					}, EnrollmentWorkflow, e)
					cancel()
					if err == nil {
						break
					}
					time.Sleep(500 * time.Millisecond)
				}
				if err != nil {
					errs <- fmt.Errorf("start %s: %w", e.EnrollmentID, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return errors.Join(func() (all []error) {
		for e := range errs {
			all = append(all, e)
		}
		return
	}()...)
}

// benchThroughput: N enrollments started while no worker runs (the executor's figure loads its N
// enrollments before the executor starts), then the worker starts; first-step tasks visible per
// second, from the first to the last. Then memory holding the N (each waits 30 days for its second
// step), and recovery: kill -9 of server and worker, restart both, time until a new enrollment's
// first step is visible.
func benchThroughput() error {
	t, c, err := newTemporal("throughput")
	if err != nil {
		return err
	}
	defer t.stop()
	steps := []Step{activity("s1", 0), activity("s2", 30*24*time.Hour)}
	t0 := time.Now()
	if err := startAll(c, 0, *count, steps); err != nil {
		return err
	}
	started := time.Since(t0).Seconds()
	c.Close()
	tasks, err := newWatcher(t.topic, "s1")
	if err != nil {
		return err
	}
	defer tasks.close()
	begin := time.Now()
	if err := t.startWorker(); err != nil {
		return err
	}
	if err := tasks.waitFor(*count, 60*time.Minute, t.server, t.worker); err != nil {
		return fmt.Errorf("throughput: %w (logs in %s)", err, t.dir)
	}
	seen := tasks.snapshot()
	first := seen[0].visible
	for _, s := range seen {
		if s.visible.Before(first) {
			first = s.visible
		}
	}
	f := rate(seen, first)
	f["startup_to_first_s"] = first.Sub(begin).Seconds()
	f["workflows_started_per_s"] = float64(*count) / started
	f["enrollments"] = float64(*count)
	result("throughput", f, map[string][]float64{"throughput_per_s": perSecond(seen)})
	time.Sleep(5 * time.Second) // settle: history and worker caches after the last step
	mem := t.memory()
	mem["enrollments"] = float64(*count)
	result("memory", mem, nil)

	t.server.kill()
	t.worker.kill()
	restart := time.Now()
	if err := t.startServer(); err != nil {
		return err
	}
	if err := t.startWorker(); err != nil {
		return err
	}
	c, err = dial(t.addr(), 2*time.Minute)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := startAll(c, *count, *count+1, steps); err != nil {
		return err
	}
	if err := tasks.waitFor(*count+1, 10*time.Minute, t.server, t.worker); err != nil {
		return fmt.Errorf("recovery: %w", err)
	}
	var fired time.Time
	for _, s := range tasks.snapshot() {
		if s.visible.After(fired) {
			fired = s.visible
		}
	}
	result("recovery", map[string]float64{"enrollments_held": float64(*count),
		"restart_to_fire_s": fired.Sub(restart).Seconds()}, nil)
	return nil
}

// benchBurst: N enrollments whose first step is due at one instant; fired/s from that instant
// until the last is visible, and each one's lateness.
func benchBurst() error {
	t, c, err := newTemporal("burst")
	if err != nil {
		return err
	}
	defer t.stop()
	defer c.Close()
	if err := t.startWorker(); err != nil {
		return err
	}
	lead := *burstLead
	if lead == 0 {
		lead = 30*time.Second + time.Duration(*count)*20*time.Millisecond
	}
	due := time.Now().Add(lead).Truncate(time.Second)
	s1 := activity("s1", 0)
	s1.At = due
	if err := startAll(c, 0, *count, []Step{s1, activity("s2", 30*24*time.Hour)}); err != nil {
		return err
	}
	allStarted := time.Now().Before(due)
	tasks, err := newWatcher(t.topic, "s1")
	if err != nil {
		return err
	}
	defer tasks.close()
	if err := tasks.waitFor(*count, time.Until(due)+60*time.Minute, t.server, t.worker); err != nil {
		return fmt.Errorf("burst: %w (logs in %s)", err, t.dir)
	}
	seen := tasks.snapshot()
	f := rate(seen, due)
	var late, commit []float64
	for _, s := range seen {
		late = append(late, float64(s.visible.Sub(due).Microseconds())/1000)
		commit = append(commit, float64(s.visible.Sub(s.decided).Microseconds())/1000)
	}
	lateness := append([]float64(nil), late...)
	summary(f, "lateness_ms", late)
	summary(f, "decided_to_visible_ms", commit)
	f["all_started_before_due"] = map[bool]float64{true: 1, false: 0}[allStarted]
	f["enrollments"] = float64(*count)
	result("timer-burst", f, map[string][]float64{"throughput_per_s": perSecond(seen),
		"lateness_ms": lateness})
	return nil
}

// benchLateness: enrollments started at a steady rate for a while, each with a first step due one
// minute after its start (like the executor's lateness run); the lateness of each first step:
// visible time minus the time its StartWorkflowExecution returned plus that minute (so it
// includes the time until the workflow's first task set the timer).
func benchLateness() error {
	t, c, err := newTemporal("lateness")
	if err != nil {
		return err
	}
	defer t.stop()
	defer c.Close()
	if err := t.startWorker(); err != nil {
		return err
	}
	tasks, err := newWatcher(t.topic, "s1")
	if err != nil {
		return err
	}
	defer tasks.close()
	const delay = time.Minute
	steps := []Step{activity("s1", delay), activity("s2", 30*24*time.Hour)}
	n := int(*steadyRate * steadySeconds.Seconds())
	due := make(map[string]time.Time, n)
	var mu sync.Mutex
	begin := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range n {
		time.Sleep(time.Until(begin.Add(time.Duration(float64(i) / *steadyRate * float64(time.Second)))))
		wg.Add(1)
		go func() { // open loop: a slow start does not hold back the next
			defer wg.Done()
			if err := startAll(c, i, i+1, steps); err != nil {
				failed.Add(1)
				return
			}
			mu.Lock()
			due[fmt.Sprintf("seq/bench/deal/%d/s1/task", i)] = time.Now().Add(delay)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		return fmt.Errorf("lateness: %d starts failed", failed.Load())
	}
	err = tasks.waitFor(n, delay+30*time.Minute, t.server, t.worker)
	seen := tasks.snapshotIDs()
	var late []float64
	for id, visible := range seen {
		late = append(late, float64(visible.Sub(due[id]).Microseconds())/1000)
	}
	lateness := append([]float64(nil), late...)
	f := map[string]float64{"steps_per_s": *steadyRate, "expected": float64(n),
		"fired": float64(len(seen))}
	summary(f, "lateness_ms", late)
	result(fmt.Sprintf("lateness-steady@%g", *steadyRate), f,
		map[string][]float64{"lateness_ms": lateness})
	if err != nil {
		return fmt.Errorf("lateness: %w (logs in %s)", err, t.dir)
	}
	return nil
}
