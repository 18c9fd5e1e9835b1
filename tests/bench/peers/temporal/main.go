// temporal-peer: the Temporal peer of tests/bench (README.md in this directory).
//
//	temporal-peer worker ...       the Temporal worker: EnrollmentWorkflow and CreateTask
//	temporal-peer throughput ...   enroll -> first step throughput, memory and kill -9 recovery
//	temporal-peer burst ...        N workflows whose first step is due at the same instant
//	temporal-peer lateness ...     first steps due a minute after starts at a steady rate
//
// The benchmarks start their own dev server (`temporal server start-dev`, SQLite file) and worker
// as child processes, and print their figures as "RESULT {json}" lines like sequences-bench.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
)

var (
	bootstrap   = flag.String("bootstrap", "127.0.0.1:9092", "Kafka bootstrap servers")
	address     = flag.String("address", "", "worker: the Temporal frontend host:port")
	taskQueue   = flag.String("task_queue", "sequences", "Temporal task queue")
	topic       = flag.String("topic", "", "worker: the topic tasks are written to")
	temporalBin = flag.String("temporal", "temporal", "path of the temporal CLI (dev server)")
	workDir     = flag.String("work_dir", "/tmp/temporal-peer", "where the servers' files and logs go")
	count       = flag.Int("count", 2000, "workflows (enrollments)")
	partitions  = flag.Int("partitions", 6, "partitions of the task topic (as the executor's)")
	starters    = flag.Int("starters", 32, "concurrent StartWorkflowExecution calls")
	burstLead   = flag.Duration("burst_lead", 0,
		"burst: time from the first start to the shared due instant (0: 30 s + 20 ms per workflow)")
	nameSuffix    = flag.String("name_suffix", "", "appended to every result name")
	steadyRate    = flag.Float64("rate", 20, "lateness: workflows started per second")
	steadySeconds = flag.Duration("seconds", 30*time.Second, "lateness: for how long")
	localAct      = flag.Bool("local_activity", false,
		"CreateTask as a local activity (no activity task round trip through the server)")

	// Worker tuning (README.md, "What is configured, and why"), passed on to the worker process.
	wfPollers  = flag.Int("workflow_pollers", 4, "MaxConcurrentWorkflowTaskPollers")
	actPollers = flag.Int("activity_pollers", 4, "MaxConcurrentActivityTaskPollers")
	wfSlots    = flag.Int("workflow_slots", 200, "MaxConcurrentWorkflowTaskExecutionSize")
	actSlots   = flag.Int("activity_slots", 500, "MaxConcurrentActivityExecutionSize")
	cacheSize  = flag.Int("sticky_cache", 10000, "sticky workflow cache size (the SDK default)")
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: temporal-peer worker|throughput|burst|lateness [flags]")
		os.Exit(2)
	}
	cmd := os.Args[1]
	_ = flag.CommandLine.Parse(os.Args[2:])
	var err error
	switch cmd {
	case "worker":
		err = runWorker()
	case "throughput":
		err = benchThroughput()
	case "burst":
		err = benchBurst()
	case "lateness":
		err = benchLateness()
	default:
		err = fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		fmt.Printf("ERROR peer-temporal-%s %v\n", cmd, err)
		os.Exit(1)
	}
}

func quietLogger() tlog.Logger {
	return tlog.NewStructuredLogger(
		slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
}

func workerArgs(addr, topicName string) []string {
	return []string{"worker", "--address=" + addr, "--task_queue=" + *taskQueue,
		"--bootstrap=" + *bootstrap, "--topic=" + topicName,
		fmt.Sprint("--workflow_pollers=", *wfPollers), fmt.Sprint("--activity_pollers=", *actPollers),
		fmt.Sprint("--workflow_slots=", *wfSlots), fmt.Sprint("--activity_slots=", *actSlots),
		fmt.Sprint("--sticky_cache=", *cacheSize)}
}

func runWorker() error {
	kafka, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(*bootstrap, ",")...))
	if err != nil {
		return err
	}
	defer kafka.Close()
	c, err := dial(*address, time.Minute)
	if err != nil {
		return err
	}
	defer c.Close()
	worker.SetStickyWorkflowCacheSize(*cacheSize)
	w := worker.New(c, *taskQueue, worker.Options{
		MaxConcurrentWorkflowTaskPollers:       *wfPollers,
		MaxConcurrentActivityTaskPollers:       *actPollers,
		MaxConcurrentWorkflowTaskExecutionSize: *wfSlots,
		MaxConcurrentActivityExecutionSize:     *actSlots,
	})
	w.RegisterWorkflow(EnrollmentWorkflow)
	w.RegisterActivity(&Activities{Kafka: kafka, Topic: *topic})
	fmt.Fprintln(os.Stderr, "worker: running")
	return w.Run(worker.InterruptCh())
}

// dial connects to the frontend, retrying while the dev server starts.
func dial(addr string, timeout time.Duration) (client.Client, error) {
	deadline := time.Now().Add(timeout)
	for {
		c, err := client.Dial(client.Options{HostPort: addr, Logger: quietLogger()})
		if err == nil {
			return c, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// result prints one RESULT line in sequences-bench's format.
func result(name string, figures map[string]float64, series map[string][]float64) {
	line, _ := json.Marshal(struct {
		Name    string               `json:"name"`
		Figures map[string]float64   `json:"figures"`
		Series  map[string][]float64 `json:"series,omitempty"`
	}{"peer-temporal-" + name + *nameSuffix, figures, series})
	fmt.Printf("RESULT %s\n", line)
}

func ctxTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
