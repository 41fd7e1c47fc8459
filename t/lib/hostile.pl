#!/usr/bin/perl

# A hostile upstream for the tests: a registry (and redirect target, and
# token realm) that answers with whatever headers and bytes a test asks
# for.  GET or HEAD /v2/<mode>/<name>/blobs/<digest>, .../manifests/<ref>,
# .../tags/list, .../referrers/<digest> answer with DIR/blobs/<hex>,
# DIR/manifests/<ref>, DIR/tags.json, DIR/referrers.json, as DIR/<mode>.json
# (read on every request, so a test can change it) says:
#   headers       extra header lines, sent as they are
#   type          Content-Type (default by endpoint)
#   digest        Docker-Content-Digest: "auto" (the body's sha256, before
#                 any corruption) or a value; none by default
#   framing       "length" (default), "chunked" or "close"
#   corrupt       1: the first byte of the body is flipped
#   status        (default 200), reason (its reason phrase)
#   redirect      a URL prefix: answers 307 to it with the path after
#                 /v2/<mode> appended
#   raw           bytes sent as they are instead of any answer (a 1xx
#                 followed by whole answers, say)
#   auth          a token: requests without "Authorization: Bearer <it>"
#                 get 401 with a challenge whose realm is /token/<mode> on
#                 this server, which answers {"token": <it>} with the mode's
#                 "token_headers" lines
#   head          a hash of the keys above that override them for HEAD
#   token_status  the token answer's status (default 200)
#   token_body    the token answer's body, sent as it is (default
#                 {"token": <auth>})
#   challenge     the WWW-Authenticate value of the 401 (default the
#                 Bearer challenge above)
# "GET /v2/" (the ping) answers as mode "ping" does (DIR/ping.json): with
# "auth", 401 and the challenge; else 200.
#   delay         seconds to wait before answering (after "auth" let the
#                 request through); token_delay: before a token answer
#   hang          seconds to wait after the header, before the body (or,
#                 for a HEAD, before closing)
# Every request is logged to DIR/requests.log as "METHOD PATH AUTH".
# Usage: hostile.pl PORT DIR.  It exits by itself after 10 minutes.

use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use Digest::SHA qw(sha256_hex);
use JSON::PP;
use Serve;

my ($port, $dir) = @ARGV;

sub slurp {
    my ($f) = @_;
    open my $fh, '<:raw', $f or return undef;
    local $/;
    return scalar <$fh>;
}

sub answer {
    my ($c, $status, $head, $body, $framing, $method, $reason) = @_;
    $reason //= { 200 => 'OK', 307 => 'Temporary Redirect',
                  401 => 'Unauthorized', 404 => 'Not Found' }->{$status}
                // 'Whatever';
    my $out = "HTTP/1.1 $status $reason\r\n";
    $out .= "$_\r\n" for @$head;
    $framing //= 'length';
    if ($framing eq 'chunked') {
        $out .= "Transfer-Encoding: chunked\r\n";
    } elsif ($framing eq 'length') {
        $out .= 'Content-Length: ' . length($body) . "\r\n";
    }
    $out .= "Connection: close\r\n\r\n";
    print $c $out;
    our $hang;
    select(undef, undef, undef, $hang) if $hang;
    return if $method eq 'HEAD';
    if ($framing eq 'chunked') {
        for (my $off = 0; $off < length $body; $off += 16384) {
            my $chunk = substr($body, $off, 16384);
            printf $c "%x\r\n%s\r\n", length $chunk, $chunk;
        }
        print $c "0\r\n\r\n";
    } else {
        print $c $body;
    }
}

serve($port, sub {
    my ($c) = @_;
    my $head = read_head($c);
    my ($method, $path) = $head =~ m{^([A-Z]+) (\S+) HTTP/};
    $method //= '-';
    $path //= '-';
    my ($auth) = $head =~ /^Authorization:[ \t]*([^\r\n]*)/mi;
    if (open my $log, '>>', "$dir/requests.log") {
        print $log "$method $path " . ($auth // '-') . "\n";
        close $log;
    }

    if ($path =~ m{^/token/(\w+)}) {
        my $spec = decode_json(slurp("$dir/$1.json") // '{}');
        select(undef, undef, undef, $spec->{token_delay}) if $spec->{token_delay};
        answer($c, $spec->{token_status} // 200,
               ['Content-Type: application/json',
                         @{ $spec->{token_headers} // [] }],
               $spec->{token_body}
               // encode_json({ token => $spec->{auth} // '' }), 'length',
               $method);
        return;
    }

    if ($path =~ m{^/v2/?(?:\?.*)?$}) {
        my $spec = decode_json(slurp("$dir/ping.json") // '{}');
        if ($spec->{auth} && ($auth // '') ne "Bearer $spec->{auth}") {
            answer($c, 401, ['Content-Type: application/json',
                             'WWW-Authenticate: ' . ($spec->{challenge}
                             // "Bearer realm=\"http://127.0.0.1:$port"
                             . "/token/ping\",service=\"hostile\"")],
                   '{"errors":[{"code":"UNAUTHORIZED"}]}', 'length', $method);
        } else {
            answer($c, 200, ['Content-Type: application/json'], '{}',
                   'length', $method);
        }
        return;
    }

    my ($mode, $rest) = $path =~ m{^/v2/(\w+)(/\S*)$};
    my $spec = defined $mode ? decode_json(slurp("$dir/$mode.json") // '{}')
             : {};
    if ($method eq 'HEAD' && ref $spec->{head} eq 'HASH') {
        $spec = { %$spec, %{ $spec->{head} } };
    }
    our $hang = $spec->{hang};

    if (defined $spec->{raw}) {
        print $c $spec->{raw};
        return;
    }

    if ($spec->{redirect}) {
        answer($c, 307, ["Location: $spec->{redirect}$rest"], '', 'length',
               $method);
        return;
    }

    if ($spec->{auth} && ($auth // '') ne "Bearer $spec->{auth}") {
        answer($c, 401, ['Content-Type: application/json',
                         'WWW-Authenticate: ' . ($spec->{challenge}
                         // "Bearer realm=\"http://127.0.0.1:"
                         . "$port/token/$mode\",service=\"hostile\"")],
               '{"errors":[{"code":"UNAUTHORIZED"}]}', 'length', $method);
        return;
    }

    select(undef, undef, undef, $spec->{delay}) if $spec->{delay};

    my ($file, $type);
    ($rest //= '') =~ s/\?.*//;
    if ($rest =~ m{/blobs/sha256:([0-9a-f]{64})$}) {
        ($file, $type) = ("blobs/$1", 'application/octet-stream');
    } elsif ($rest =~ m{/manifests/([\w.:-]+)$}) {
        ($file, $type) = ("manifests/$1",
                          'application/vnd.oci.image.manifest.v1+json');
    } elsif ($rest =~ m{/tags/list$}) {
        ($file, $type) = ('tags.json', 'application/json');
    } elsif ($rest =~ m{/referrers/sha256:[0-9a-f]{64}$}) {
        ($file, $type) = ('referrers.json',
                          'application/vnd.oci.image.index.v1+json');
    }
    my $body = defined $file ? slurp("$dir/$file") : undef;
    if (!defined $mode || !defined $body) {
        answer($c, 404, ['Content-Type: application/json'],
               '{"errors":[{"code":"NOT_FOUND"}]}', 'length', $method);
        return;
    }

    my @h = ('Content-Type: ' . ($spec->{type} // $type));
    my $digest = $spec->{digest} // '';
    $digest = 'sha256:' . sha256_hex($body) if $digest eq 'auto';
    push @h, "Docker-Content-Digest: $digest" if $digest;
    push @h, @{ $spec->{headers} // [] };
    substr($body, 0, 1) = chr(ord(substr($body, 0, 1)) ^ 0x01)
        if $spec->{corrupt} && length $body;
    answer($c, $spec->{status} // 200, \@h, $body, $spec->{framing},
           $method, $spec->{reason});
});
