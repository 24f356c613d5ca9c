package web

import (
	"html/template"
	"net/http"
	"strings"
)

// totpEnrolment is a new TOTP secret to add to an authenticator app,
// shown on the answer to the enrolment form only.
type totpEnrolment struct {
	Secret     string        `json:"secret"`
	OTPAuthURL string        `json:"otpauth_url"`
	QR         template.HTML `json:"-"` // "" when it could not be drawn
}

// accountView is the account page.
type accountView struct {
	Enrolment *totpEnrolment
	// Confirm shows the code form of an enrolment under way (after a wrong
	// code, the secret is not shown again).
	Confirm       bool
	RecoveryCodes []string
	Owner         bool
}

// accountDone are the notices of the account forms that redirect, by the
// "done" query value.
var accountDone = map[string]string{
	"password":    "Password changed. Your other sessions were signed out and your API tokens deleted.",
	"totp-off":    "Two-factor authentication is off.",
	"require-on":  "The team now requires two-factor authentication of its members.",
	"require-off": "The team no longer requires two-factor authentication.",
}

func (s *Server) accountPage(w http.ResponseWriter, r *http.Request, f *flash) {
	v := s.signedIn(w, r)
	if v == nil {
		return
	}
	v.Title, v.Nav = "Your account", "account"
	av := accountView{Owner: v.Me.Role == "owner"}
	if f == nil {
		v.Notice = accountDone[r.URL.Query().Get("done")]
	} else {
		switch sec := f.Secret.(type) {
		case *totpEnrolment:
			av.Enrolment, av.Confirm = sec, true
		case []string:
			av.RecoveryCodes = sec
		}
		if f.Error != "" && r.Method == http.MethodPost {
			// The refusal is shown next to the form that was sent.
			v.ErrorAt = strings.TrimPrefix(r.URL.Path, "/account/")
			av.Confirm = av.Confirm || v.ErrorAt == "totp/confirm"
		}
	}
	v.Data = av
	s.show(w, r, v, "account", f)
}

// changePassword changes the password through PUT /api/v1/me/password,
// which signs out every other session of the user.
func (s *Server) changePassword(w http.ResponseWriter, r *http.Request) {
	s.act(w, r, s.accountPage, func() (string, error) {
		next := r.PostFormValue("new_password")
		if next != r.PostFormValue("confirm_password") {
			return "", invalid("the new password and its confirmation differ")
		}
		body := map[string]string{"current_password": r.PostFormValue("current_password"), "new_password": next}
		return "/account?done=password", s.send(r, "PUT", "/api/v1/me/password", body, nil)
	})
}

// startTOTP starts enrolment after the password; the account page it
// redirects to shows the new secret, its otpauth URI and QR code, and the
// form to confirm it with a code, once.
func (s *Server) startTOTP(w http.ResponseWriter, r *http.Request) {
	s.act(w, r, s.accountPage, func() (string, error) {
		var en totpEnrolment
		if err := s.send(r, "POST", "/api/v1/me/totp", map[string]string{"password": r.PostFormValue("password")}, &en); err != nil {
			return "", err
		}
		if svg, err := qrSVG(en.OTPAuthURL, "QR code of the secret, for an authenticator app"); err == nil {
			en.QR = svg
		} else {
			s.log.Warn("web: draw TOTP QR code", "err", err)
		}
		return s.flashTo(w, r, "/account", &flash{Secret: &en,
			Notice: "Add this secret to your authenticator app, then confirm with a code it shows."}), nil
	})
}

// confirmTOTP turns TOTP on with a code; the account page it redirects to
// shows the recovery codes, once.
func (s *Server) confirmTOTP(w http.ResponseWriter, r *http.Request) {
	s.act(w, r, s.accountPage, func() (string, error) {
		var out struct {
			RecoveryCodes []string `json:"recovery_codes"`
		}
		code := strings.ReplaceAll(strings.TrimSpace(r.PostFormValue("code")), " ", "")
		if err := s.send(r, "POST", "/api/v1/me/totp/confirm", map[string]string{"code": code}, &out); err != nil {
			return "", err
		}
		return s.flashTo(w, r, "/account", &flash{Secret: out.RecoveryCodes, Notice: "Two-factor authentication is on."}), nil
	})
}

func (s *Server) disableTOTP(w http.ResponseWriter, r *http.Request) {
	s.act(w, r, s.accountPage, func() (string, error) {
		body := map[string]string{"password": r.PostFormValue("password")}
		return "/account?done=totp-off", s.send(r, "DELETE", "/api/v1/me/totp", body, nil)
	})
}

// setRequire2FA is the owner's switch of the team's second-factor rule.
func (s *Server) setRequire2FA(w http.ResponseWriter, r *http.Request) {
	s.act(w, r, s.accountPage, func() (string, error) {
		on := r.PostFormValue("require_2fa") == "on"
		next := "/account?done=require-off"
		if on {
			next = "/account?done=require-on"
		}
		return next, s.send(r, "PUT", "/api/v1/team/require-2fa", map[string]bool{"require_2fa": on}, nil)
	})
}
