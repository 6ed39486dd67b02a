package agent

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
)

// MutatePath is where the webhook is served.
const MutatePath = "/mutate"

// maxReviewBytes bounds an AdmissionReview body (the API server's own
// request limit is 3 MiB).
const maxReviewBytes = 4 << 20

// Handler serves AdmissionReviews on MutatePath and a health check on
// /healthz. log receives one line per refused or warned admission; nil
// discards them.
func Handler(m *Mutator, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("POST "+MutatePath, func(w http.ResponseWriter, r *http.Request) {
		var review admissionv1.AdmissionReview
		if err := json.NewDecoder(io.LimitReader(r.Body, maxReviewBytes)).Decode(&review); err != nil || review.Request == nil {
			http.Error(w, "expected an admission.k8s.io/v1 AdmissionReview", http.StatusBadRequest)
			return
		}
		req := review.Request
		resp := m.Review(r.Context(), req)
		if !resp.Allowed || len(resp.Warnings) > 0 {
			msg := ""
			if resp.Result != nil {
				msg = resp.Result.Message
			}
			log.Info("admission", "kind", req.Kind.Kind, "namespace", req.Namespace, "name", req.Name, "allowed", resp.Allowed, "message", msg, "warnings", resp.Warnings)
		}
		out := admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
	return mux
}

// ServeOptions configure Serve.
type ServeOptions struct {
	// Addr is the listen address; DefaultAddr if empty.
	Addr string
	// Listener, when set, is used instead of listening on Addr.
	Listener net.Listener
	Logger   *slog.Logger
}

// DefaultAddr is where the agent listens in its Pod.
const DefaultAddr = ":8443"

// Serve issues or loads the serving certificate, then serves m over TLS
// until ctx ends, renewing the certificate as it goes.
func Serve(ctx context.Context, m *Mutator, r *Rotator, o ServeOptions) error {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := r.Options.Check(); err != nil {
		return err
	}
	if err := r.Reconcile(ctx); err != nil {
		return fmt.Errorf("serving certificate: %w", err)
	}
	ln := o.Listener
	if ln == nil {
		addr := o.Addr
		if addr == "" {
			addr = DefaultAddr
		}
		var err error
		if ln, err = net.Listen("tcp", addr); err != nil {
			return err
		}
	}
	srv := &http.Server{
		Handler:           Handler(m, log),
		TLSConfig:         &tls.Config{GetCertificate: r.GetCertificate, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go r.Run(ctx, func(err error) { log.Error("renewing the serving certificate", "err", err) })
	go func() {
		<-ctx.Done()
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
