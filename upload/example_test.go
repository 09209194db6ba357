package upload_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"mellium.im/xmpp/jid"

	"chatbx.eu/privacy/upload"
	"chatbx.eu/privacy/upload/uploadtest"
)

// Example shows the whole life of an upload: a slot is requested (as the
// XMPP handler does for a <request/> IQ), the client PUTs the file over
// HTTPS with the slot's Authorization header, anyone with the URL GETs it,
// and after 30 days Expire deletes it.
func Example() {
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	svc, err := upload.NewService(uploadtest.NewMemMeta(), uploadtest.NewMemBlobs(), upload.Config{
		BaseURL: "https://upload.example.org/upload",
		Now:     func() time.Time { return now },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := httptest.NewTLSServer(svc) // the handler must be served over HTTPS
	defer srv.Close()

	owner := jid.MustParse("juliet@example.org/balcony")
	slot, err := svc.RequestSlot(context.Background(), owner, "balcony.jpg", 5, "image/jpeg")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("GET URL:", strings.Replace(slot.GetURL, slot.ID, "<id>", 1))

	// Clients use the slot's URLs; here they are pointed at the test server.
	local := func(u string) string {
		return strings.Replace(u, "https://upload.example.org", srv.URL, 1)
	}
	put, _ := http.NewRequest(http.MethodPut, local(slot.PutURL), strings.NewReader("hello"))
	put.Header = slot.Header.Clone() // Authorization: Bearer <token>
	put.Header.Set("Content-Type", "image/jpeg")
	resp, err := srv.Client().Do(put)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println("PUT:", resp.Status)

	resp, err = srv.Client().Get(local(slot.GetURL))
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println("GET:", resp.Status, string(body), resp.Header.Get("Content-Disposition"))

	now = now.Add(30*24*time.Hour + time.Second) // 30 days later
	removed, err := svc.Expire(context.Background(), now.Add(-svc.TTL()))
	fmt.Println("expired:", removed, err)
	resp, err = srv.Client().Get(local(slot.GetURL))
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println("GET after expiry:", resp.Status)
	// Output:
	// GET URL: https://upload.example.org/upload/<id>/balcony.jpg
	// PUT: 201 Created
	// GET: 200 OK hello inline; filename=balcony.jpg
	// expired: 1 <nil>
	// GET after expiry: 404 Not Found
}
