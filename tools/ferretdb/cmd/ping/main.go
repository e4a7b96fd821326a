// Command ping sends a MongoDB "ping" command to a server and exits 0 when it answers ok.
//
// Usage: ping [-timeout 2s] mongodb://127.0.0.1:27017/
//
// It is used by scripts/ferretdb-start to wait until FerretDB is ready.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

func main() {
	timeout := flag.Duration("timeout", 2*time.Second, "overall timeout for connecting and pinging")
	quiet := flag.Bool("q", false, "print nothing on success")
	flag.Parse()

	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: ping [-timeout 2s] [-q] MONGODB_URI")
		os.Exit(2)
	}

	uri := flag.Arg(0)

	if err := ping(uri, *timeout); err != nil {
		fmt.Fprintf(os.Stderr, "ping %s: %v\n", uri, err)
		os.Exit(1)
	}

	if !*quiet {
		fmt.Printf("ping %s: ok\n", uri)
	}
}

func ping(uri string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	opts := options.Client().
		ApplyURI(uri).
		SetDirect(true).
		SetServerSelectionTimeout(timeout).
		SetConnectTimeout(timeout)

	client, err := mongo.Connect(ctx, opts)
	if err != nil {
		return err
	}

	defer client.Disconnect(context.Background()) //nolint:errcheck // best effort

	var res bson.M
	if err = client.Database("admin").RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Decode(&res); err != nil {
		return err
	}

	if ok, _ := res["ok"].(float64); ok != 1 {
		return fmt.Errorf("unexpected reply: %v", res)
	}

	return nil
}
