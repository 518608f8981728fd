// Command local runs all of Fornax in one process on its embedded
// defaults: `go run ./local` (or `make run`). Configuration comes from
// FORNAX_* environment variables; see the README.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/fornax-dev/fornax/local/stack"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg, err := stack.FromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fornax:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := stack.Start(ctx, cfg, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fornax:", err)
		os.Exit(1)
	}
	fmt.Printf("Fornax is running.\n  API and webhooks: %s\n  Registry:         %s\n  Data:             %s\n", s.URL, s.Registry, s.Config.DataDir)
	if s.NewAdminToken {
		// Printed once, on the start that made it; it stays in the data directory.
		fmt.Printf("  Admin token (shown once; kept in %s/admin.token):\n    %s\n", s.Config.DataDir, s.AdminToken)
	} else if s.AdminToken != "" {
		fmt.Printf("  User: admin (token in %s/admin.token)\n", s.Config.DataDir)
	}
	<-ctx.Done()
	fmt.Println("fornax: stopping")
	if err := s.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "fornax: stop:", err)
		os.Exit(1)
	}
}
