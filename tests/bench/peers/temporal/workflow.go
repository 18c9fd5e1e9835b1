package main

// The sequence as Temporal's documentation would have it: one workflow per enrollment, a durable
// timer per step (workflow.Sleep), and an activity per step that writes the step's effect: the
// same TaskCreated envelope the step executor emits, produced to Kafka.

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"sequences.local/bench/peers/temporal/pb"
)

// Step is one activity step of a sequence: due Delay after the previous step fired (or after the
// start), or at the instant At when it is set (the executor's "at HH:MM" step).
type Step struct {
	ID           string
	Delay        time.Duration
	At           time.Time
	ActivityType string
	Subject      string
}

// Enrollment is the workflow's input: the item enrolled and the sequence's steps.
type Enrollment struct {
	EnrollmentID  string
	CompanyID     string
	CorrelationID string
	ItemKey       string
	SequenceID    string
	OwnerID       string
	Steps         []Step
	// Runs CreateTask as a local activity: inside the workflow task, recorded as a marker in the
	// history, without the activity task's round trip through the server (README.md).
	LocalActivity bool
}

// TaskInput is what the CreateTask activity needs to write one step's effect.
type TaskInput struct {
	Enrollment Enrollment
	Step       Step
}

// EnrollmentWorkflow runs every step of one enrollment: waits on a durable timer until the step is
// due, then runs CreateTask (retried by Temporal until it succeeds).
func EnrollmentWorkflow(ctx workflow.Context, e Enrollment) error {
	retry := &temporal.RetryPolicy{InitialInterval: time.Second}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second, RetryPolicy: retry,
	})
	local := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 30 * time.Second, RetryPolicy: retry,
	})
	for _, s := range e.Steps {
		due := workflow.Now(ctx).Add(s.Delay)
		if !s.At.IsZero() {
			due = s.At
		}
		if wait := due.Sub(workflow.Now(ctx)); wait > 0 {
			if err := workflow.Sleep(ctx, wait); err != nil {
				return err
			}
		}
		in := TaskInput{Enrollment: e, Step: s}
		var done workflow.Future
		if e.LocalActivity {
			done = workflow.ExecuteLocalActivity(local, "CreateTask", in)
		} else {
			done = workflow.ExecuteActivity(ctx, "CreateTask", in)
		}
		if err := done.Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

// Activities writes effects to Kafka: one idempotent (acks=all) produce per task, awaited before
// the activity completes. A retried activity writes the same event id again (at least once), the
// way the executor's at_least_once mode does; consumers deduplicate by event id.
type Activities struct {
	Kafka *kgo.Client
	Topic string
}

// CreateTask produces the step's TaskCreated envelope, keyed by the item like the executor's.
func (a *Activities) CreateTask(ctx context.Context, in TaskInput) error {
	now := time.Now().UTC()
	e, s := in.Enrollment, in.Step
	taskID := fmt.Sprintf("%s/%s/task", e.EnrollmentID, s.ID)
	env := &pb.Envelope{
		EventId:       taskID,
		CompanyId:     e.CompanyID,
		OccurredAt:    timestamppb.New(now),
		CausationId:   e.EnrollmentID,
		CorrelationId: e.CorrelationID,
		Payload: &pb.Envelope_TaskCreated{TaskCreated: &pb.TaskCreated{
			TaskId:         taskID,
			EnrollmentId:   e.EnrollmentID,
			ItemKey:        e.ItemKey,
			SequenceId:     e.SequenceID,
			StepId:         s.ID,
			ActivityType:   s.ActivityType,
			Subject:        s.Subject,
			AssigneeUserId: e.OwnerID,
			DueAt:          timestamppb.New(now),
			DueDate: &pb.Date{
				Year: int32(now.Year()), Month: int32(now.Month()), Day: int32(now.Day()),
			},
			TimeZone: "UTC",
		}},
	}
	value, err := proto.MarshalOptions{Deterministic: true}.Marshal(env)
	if err != nil {
		return err
	}
	rec := &kgo.Record{Topic: a.Topic, Key: []byte(e.ItemKey), Value: value}
	return a.Kafka.ProduceSync(ctx, rec).FirstErr()
}
