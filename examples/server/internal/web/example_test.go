package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"time"

	"chatbx.eu/privacy/examples/server/internal/web"
)

func Example() {
	h := web.New(web.Config{
		Backend: newFakeBackend(), // the account store, through a small adapter
		Privacy: func(context.Context) ([]web.PrivacyItem, error) {
			return []web.PrivacyItem{
				{Data: "Uploaded files", Lifetime: 30 * 24 * time.Hour, Job: "upload expiry"},
				{Data: "Connection logs", Lifetime: 24 * time.Hour, Job: "log expiry"},
			}, nil
		},
		Domain: "example.org",
	})
	mux := http.NewServeMux()
	mux.Handle("/account", h)
	mux.Handle("/account/", h)
	mux.Handle("/privacy", h)

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/privacy", nil))
	fmt.Println(rec.Code, rec.Header().Get("Cache-Control"), rec.Header().Values("Set-Cookie"))
	for _, row := range regexp.MustCompile(`<tr><td>(.*?)</td><td>(.*?)</td>`).FindAllStringSubmatch(rec.Body.String(), -1) {
		fmt.Printf("%s: %s\n", row[1], row[2])
	}
	// Output:
	// 200 no-store []
	// Uploaded files: 30 days
	// Connection logs: 24 hours
}
