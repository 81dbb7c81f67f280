// The AWS SDK for Go (v1) against rolegate's STS: credentials from the SDK's web identity role
// provider, then GetCallerIdentity signed with them. Prints one JSON line and exits 0, or prints the
// SDK's error as JSON and exits 2.
//
//	sts-web-identity provider   stscreds.NewWebIdentityRoleProviderWithOptions with the token file
//	                            AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN and AWS_ROLE_SESSION_NAME
//	sts-web-identity env        the session's default credential chain, which reads the same
//	                            variables
//
// The STS endpoint is ROLEGATE_STS_ENDPOINT (this SDK version does not read AWS_ENDPOINT_URL_STS).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/aws/awserr"
	"github.com/aws/aws-sdk-go/aws/credentials"
	"github.com/aws/aws-sdk-go/aws/credentials/stscreds"
	"github.com/aws/aws-sdk-go/aws/session"
	"github.com/aws/aws-sdk-go/service/sts"
)

func fail(err error) {
	out := map[string]interface{}{"message": err.Error()}
	if aerr, ok := err.(awserr.Error); ok {
		out["code"] = aerr.Code()
		out["message"] = aerr.Message()
		// The provider wraps the STS error.
		if orig, ok := aerr.OrigErr().(awserr.Error); ok {
			out["code"] = orig.Code()
			out["message"] = orig.Message()
			err = orig
		}
	}
	if rf, ok := err.(awserr.RequestFailure); ok {
		out["status"] = rf.StatusCode()
		out["requestId"] = rf.RequestID()
	}
	line, _ := json.Marshal(map[string]interface{}{"error": out})
	fmt.Println(string(line))
	os.Exit(2)
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: sts-web-identity provider|env")
		os.Exit(64)
	}
	config := aws.NewConfig().
		WithRegion("us-east-1").
		WithEndpoint(os.Getenv("ROLEGATE_STS_ENDPOINT")).
		WithMaxRetries(0)
	var creds *credentials.Credentials
	switch os.Args[1] {
	case "provider":
		sess, err := session.NewSession(config.Copy().WithCredentials(credentials.AnonymousCredentials))
		if err != nil {
			fail(err)
		}
		provider := stscreds.NewWebIdentityRoleProviderWithOptions(
			sts.New(sess),
			os.Getenv("AWS_ROLE_ARN"),
			os.Getenv("AWS_ROLE_SESSION_NAME"),
			stscreds.FetchTokenPath(os.Getenv("AWS_WEB_IDENTITY_TOKEN_FILE")),
		)
		creds = credentials.NewCredentials(provider)
	case "env":
		sess, err := session.NewSession(config)
		if err != nil {
			fail(err)
		}
		creds = sess.Config.Credentials
	default:
		fmt.Fprintln(os.Stderr, "usage: sts-web-identity provider|env")
		os.Exit(64)
	}
	sess, err := session.NewSession(config.Copy().WithCredentials(creds))
	if err != nil {
		fail(err)
	}
	req, who := sts.New(sess).GetCallerIdentityRequest(&sts.GetCallerIdentityInput{})
	if err := req.Send(); err != nil {
		fail(err)
	}
	value, err := creds.Get()
	if err != nil {
		fail(err)
	}
	expires, err := creds.ExpiresAt()
	if err != nil {
		fail(err)
	}
	line, _ := json.Marshal(map[string]interface{}{
		"arn":             aws.StringValue(who.Arn),
		"account":         aws.StringValue(who.Account),
		"userId":          aws.StringValue(who.UserId),
		"accessKeyId":     value.AccessKeyID,
		"hasSessionToken": value.SessionToken != "",
		"provider":        value.ProviderName,
		"expiration":      expires.UTC().Format(time.RFC3339),
		"requestId":       req.RequestID,
	})
	fmt.Println(string(line))
}
