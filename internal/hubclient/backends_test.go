package hubclient_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// PostgresEnv names a PostgreSQL URL the tests also run against
// (hack/postgres.sh starts one; hack/test.sh sets it).
const PostgresEnv = "SKIFF_TEST_POSTGRES_URL"

type backend struct{ name, url string }

// backends are SQLite, and PostgreSQL when $SKIFF_TEST_POSTGRES_URL is set.
func backends(t *testing.T) []backend {
	b := []backend{{"sqlite", ""}}
	if u := os.Getenv(PostgresEnv); u != "" {
		b = append(b, backend{"postgres", u})
	} else {
		t.Logf("PostgreSQL tests skipped: set %s (hack/postgres.sh start)", PostgresEnv)
	}
	return b
}

// freshSchema returns url pointing at a new, empty schema dropped after
// the test; "" (SQLite) stays "".
func freshSchema(t *testing.T, url string) string {
	t.Helper()
	if url == "" {
		return ""
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "hubtest_" + hex.EncodeToString(b)
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		db.Close()
		t.Fatalf("creating schema: %v", err)
	}
	t.Cleanup(func() {
		db.Exec("DROP SCHEMA " + schema + " CASCADE")
		db.Close()
	})
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	return url + sep + "search_path=" + schema
}
