package hub

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/skiffhq/skiff/internal/hubapi"
)

// Audit actions of account management.
const (
	ActionTokenRevoke    = "token.revoke"
	ActionUserUpdate     = "user.update"
	ActionUserRemove     = "user.remove"
	ActionPasswordChange = "password.change"
	ActionPasswordReset  = "password.reset"
	ActionGroupRemove    = "group.remove"
	ActionMFAEnroll      = "mfa.enroll"
	ActionMFAReset       = "mfa.reset"
)

func (h *Hub) accountRoutes(m *http.ServeMux) {
	m.HandleFunc("POST /api/v1/logout", h.authed(h.apiLogout))
	m.HandleFunc("GET /api/v1/tokens", h.authed(h.apiTokens))
	m.HandleFunc("DELETE /api/v1/tokens/{id}", h.authed(h.apiRevokeToken))
	m.HandleFunc("PATCH /api/v1/users/{user}", h.authed(h.apiUpdateUser))
	m.HandleFunc("DELETE /api/v1/users/{user}", h.authed(h.apiRemoveUser))
	m.HandleFunc("POST /api/v1/users/{user}/password", h.authed(h.apiResetPassword))
	m.HandleFunc("DELETE /api/v1/users/{user}/mfa", h.authed(h.apiResetMFA))
	m.HandleFunc("POST /api/v1/password", h.authed(h.apiChangePassword))
	m.HandleFunc("DELETE /api/v1/groups/{group}/members/{user}", h.authed(h.apiRemoveMember))
}

// Tokens lists the unexpired tokens of user ("" for everyone's), newest
// first.
func (s *Store) Tokens(ctx context.Context, user string) ([]TokenInfo, error) {
	rows, err := s.rows(ctx, s.db, `SELECT `+tokenCols+` FROM tokens WHERE (user_name = ? OR ? = '') AND expires > ? ORDER BY created DESC, id DESC`, user, user, s.now().Unix())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []TokenInfo{}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *t)
	}
	return out, rows.Err()
}

// revokeTokenID deletes token id, which must belong to user unless user
// is "" (a site administrator), and appends rec.
func (s *Store) revokeTokenID(ctx context.Context, id int64, user string, rec *auditRecord) error {
	return s.audited(ctx, rec, func(tx *StoreTx) error {
		n, err := tx.affected(ctx, `DELETE FROM tokens WHERE id = ? AND (user_name = ? OR ? = '')`, id, user, user)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("token %d: %w", id, ErrNotFound)
		}
		return nil
	})
}

// revokeUserTokens deletes user's tokens inside tx, but keep (0: none).
func (s *Store) revokeUserTokens(ctx context.Context, tx *StoreTx, user string, keep int64) error {
	return tx.exec(ctx, `DELETE FROM tokens WHERE user_name = ? AND id <> ?`, user, keep)
}

// otherAdmins counts the enabled site administrators other than user.
func (s *Store) otherAdmins(ctx context.Context, tx *StoreTx, user string) (int, error) {
	var n int
	err := tx.row(ctx, `SELECT COUNT(*) FROM users WHERE admin <> 0 AND disabled = 0 AND name <> ?`, user).Scan(&n)
	return n, err
}

// UserUpdate is [hubapi.UserUpdate].
type UserUpdate = hubapi.UserUpdate

// UpdateUserAs applies u to user, audited as done by actor. The last
// enabled site administrator cannot lose the right or be disabled.
func (s *Store) UpdateUserAs(ctx context.Context, actor, user string, u UserUpdate) error {
	rec := &auditRecord{actor, ActionUserUpdate, user, u}
	return s.audited(ctx, rec, func(tx *StoreTx) error {
		var admin int
		if err := tx.row(ctx, `SELECT admin FROM users WHERE name = ?`, user).Scan(&admin); errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("user %s: %w", user, ErrNotFound)
		} else if err != nil {
			return err
		}
		demoted := admin != 0 && ((u.Admin != nil && !*u.Admin) || (u.Disabled != nil && *u.Disabled))
		if demoted {
			if n, err := s.otherAdmins(ctx, tx, user); err != nil {
				return err
			} else if n == 0 {
				return fmt.Errorf("%w: %s is the last site administrator: make another one first", ErrConflict, user)
			}
		}
		if u.Admin != nil {
			if err := tx.exec(ctx, `UPDATE users SET admin = ? WHERE name = ?`, boolInt(*u.Admin), user); err != nil {
				return err
			}
		}
		if u.Disabled != nil {
			if err := tx.exec(ctx, `UPDATE users SET disabled = ? WHERE name = ?`, boolInt(*u.Disabled), user); err != nil {
				return err
			}
			if *u.Disabled {
				return s.revokeUserTokens(ctx, tx, user, 0)
			}
		}
		return nil
	})
}

// RemoveUserAs deletes user with their tokens, group memberships and
// grants, audited as done by actor. Their approvals and audit entries
// stay. The last enabled site administrator cannot be removed.
func (s *Store) RemoveUserAs(ctx context.Context, actor, user string) error {
	rec := &auditRecord{actor, ActionUserRemove, user, nil}
	return s.audited(ctx, rec, func(tx *StoreTx) error {
		var admin int
		if err := tx.row(ctx, `SELECT admin FROM users WHERE name = ?`, user).Scan(&admin); errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("user %s: %w", user, ErrNotFound)
		} else if err != nil {
			return err
		}
		if admin != 0 {
			if n, err := s.otherAdmins(ctx, tx, user); err != nil {
				return err
			} else if n == 0 {
				return fmt.Errorf("%w: %s is the last site administrator: make another one first", ErrConflict, user)
			}
		}
		for _, q := range []string{
			`DELETE FROM tokens WHERE user_name = ?`,
			`DELETE FROM group_members WHERE user_name = ?`,
			`DELETE FROM grants WHERE subject = 'user:' || ?`,
			`DELETE FROM users WHERE name = ?`,
		} {
			if err := tx.exec(ctx, q, user); err != nil {
				return err
			}
		}
		return nil
	})
}

// setPassword replaces user's password and revokes their tokens but
// keep, appending rec.
func (s *Store) setPassword(ctx context.Context, user, password string, keep int64, rec *auditRecord) error {
	if len(password) < 8 {
		return fmt.Errorf("%w: the password is too short: use at least 8 characters", ErrInvalid)
	}
	hash := HashPassword(password)
	return s.audited(ctx, rec, func(tx *StoreTx) error {
		if err := s.updateUserOn(ctx, tx.stx, user, `UPDATE users SET password_hash = ? WHERE name = ?`, hash, user); err != nil {
			return err
		}
		return s.revokeUserTokens(ctx, tx, user, keep)
	})
}

// ResetPasswordAs sets user's password, revoking their tokens, audited
// as done by actor (a site administrator, or local:NAME).
func (s *Store) ResetPasswordAs(ctx context.Context, actor, user, password string) error {
	return s.setPassword(ctx, user, password, 0, &auditRecord{actor, ActionPasswordReset, user, nil})
}

// RemoveGroupMemberAs takes user out of group, audited as done by actor.
func (s *Store) RemoveGroupMemberAs(ctx context.Context, actor, group, user string) error {
	rec := &auditRecord{actor, ActionGroupRemove, group, map[string]any{"user": user}}
	return s.audited(ctx, rec, func(tx *StoreTx) error {
		n, err := tx.affected(ctx, `DELETE FROM group_members WHERE group_name = ? AND user_name = ?`, group, user)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%s in group %s: %w", user, group, ErrNotFound)
		}
		return nil
	})
}

// ResetMFAAs turns MFA off for user (a lost device) and revokes their
// tokens, audited as done by actor. The user logs in with the password
// and enrols again.
func (s *Store) ResetMFAAs(ctx context.Context, actor, user string) error {
	rec := &auditRecord{actor, ActionMFAReset, user, nil}
	return s.audited(ctx, rec, func(tx *StoreTx) error {
		if err := s.updateUserOn(ctx, tx.stx, user, `UPDATE users SET totp_secret = '', totp_pending = '', totp_last_step = 0 WHERE name = ?`, user); err != nil {
			return err
		}
		return s.revokeUserTokens(ctx, tx, user, 0)
	})
}

func (h *Hub) apiLogout(w http.ResponseWriter, r *http.Request, p *principal) {
	if p.token == nil {
		writeError(w, fmt.Errorf("%w: log out with the token to revoke, not a password", ErrInvalid))
		return
	}
	rec := &auditRecord{p.user, ActionLogout, p.user, map[string]any{"ip": clientIP(r), "token": p.token.ID}}
	if err := h.store.revokeTokenID(r.Context(), p.token.ID, p.user, rec); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"revoked": true})
}

// apiTokens lists the caller's tokens; a site administrator may ask for
// another user's (?user=NAME) or everyone's (?user=*).
func (h *Hub) apiTokens(w http.ResponseWriter, r *http.Request, p *principal) {
	user := r.URL.Query().Get("user")
	switch {
	case user == "" || user == p.user:
		user = p.user
	case !h.requireAdmin(w, p):
		return
	case user == "*":
		user = ""
	}
	ts, err := h.store.Tokens(r.Context(), user)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": ts})
}

func (h *Hub) apiRevokeToken(w http.ResponseWriter, r *http.Request, p *principal) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, fmt.Errorf("%w: token id %q: use the ID `skiff hub token list` prints", ErrInvalid, r.PathValue("id")))
		return
	}
	owner := p.user
	if p.admin {
		owner = ""
	}
	rec := &auditRecord{p.user, ActionTokenRevoke, strconv.FormatInt(id, 10), nil}
	if err := h.store.revokeTokenID(r.Context(), id, owner, rec); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int64{"revoked": id})
}

func (h *Hub) apiUpdateUser(w http.ResponseWriter, r *http.Request, p *principal) {
	if !h.requireAdmin(w, p) {
		return
	}
	var req UserUpdate
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	user := r.PathValue("user")
	if err := h.store.UpdateUserAs(r.Context(), p.user, user, req); err != nil {
		writeError(w, err)
		return
	}
	u, err := h.store.User(r.Context(), user)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, u)
}

func (h *Hub) apiRemoveUser(w http.ResponseWriter, r *http.Request, p *principal) {
	if !h.requireAdmin(w, p) {
		return
	}
	user := r.PathValue("user")
	if err := h.store.RemoveUserAs(r.Context(), p.user, user); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"removed": user})
}

// PasswordRequest is [hubapi.PasswordRequest].
type PasswordRequest = hubapi.PasswordRequest

func (h *Hub) apiChangePassword(w http.ResponseWriter, r *http.Request, p *principal) {
	var req PasswordRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	ctx := r.Context()
	if err := h.checkPassword(ctx, p.user, req.Current, clientIP(r), true, req.OTP); err != nil {
		writeError(w, err)
		return
	}
	var keep int64
	if p.token != nil {
		keep = p.token.ID
	}
	// Every other token of the user is revoked: a stolen one stops
	// working with the old password.
	if err := h.store.setPassword(ctx, p.user, req.Password, keep, &auditRecord{p.user, ActionPasswordChange, p.user, nil}); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"changed": true})
}

func (h *Hub) apiResetPassword(w http.ResponseWriter, r *http.Request, p *principal) {
	if !h.requireAdmin(w, p) {
		return
	}
	var req PasswordRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	var resp PasswordRequest
	if req.Password == "" {
		req.Password = RandomPassword()
		resp.Password = req.Password
	}
	if err := h.store.ResetPasswordAs(r.Context(), p.user, r.PathValue("user"), req.Password); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (h *Hub) apiResetMFA(w http.ResponseWriter, r *http.Request, p *principal) {
	if !h.requireAdmin(w, p) {
		return
	}
	if err := h.store.ResetMFAAs(r.Context(), p.user, r.PathValue("user")); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"mfa": false})
}

func (h *Hub) apiRemoveMember(w http.ResponseWriter, r *http.Request, p *principal) {
	if !h.requireAdmin(w, p) {
		return
	}
	group, user := r.PathValue("group"), r.PathValue("user")
	if err := h.store.RemoveGroupMemberAs(r.Context(), p.user, group, user); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"group": group, "removed": user})
}
