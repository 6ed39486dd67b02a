// Package depcheck holds the test that enforces Skiff's import boundaries:
// only internal/chart imports Helm, only internal/kube imports client-go, and
// the API types import nothing of ours.
package depcheck
