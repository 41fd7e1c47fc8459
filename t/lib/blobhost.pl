#!/usr/bin/perl

# A small blob host for the tests: answers GET /v2/<mode>/.../blobs/<digest>
# with the file <dir>/<hex> (or <dir>/<hex>.bad when that exists, a body
# that does not match its digest), framed as <mode> says:
#   chunked  chunked transfer coding, the final data chunk and the
#            terminating chunk written separately, a moment apart
#   close    no Content-Length, no chunking: the body ends when the
#            connection closes
# Usage: blobhost.pl PORT DIR.  It exits by itself after 10 minutes.

use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use Time::HiRes qw(sleep);
use Serve;

my ($port, $dir) = @ARGV;

serve($port, sub {
    my ($c) = @_;
    my $head = read_head($c);
    my ($mode, $hex) = $head =~ m{^GET /v2/(\w+)/\S*/blobs/sha256:([0-9a-f]{64}) };
    my $file = defined $hex && -e "$dir/$hex.bad" ? "$dir/$hex.bad"
             : defined $hex ? "$dir/$hex" : '';
    if (!$mode || !-e $file) {
        print $c "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
               . "Connection: close\r\n\r\n";
        return;
    }
    open my $fh, '<:raw', $file or die;
    my $body = do { local $/; <$fh> };

    if ($mode eq 'close') {
        print $c "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream"
               . "\r\nConnection: close\r\n\r\n$body";
        return;
    }

    print $c "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
           . "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    for (my $off = 0; $off < length $body; $off += 16384) {
        my $chunk = substr($body, $off, 16384);
        printf $c "%x\r\n%s\r\n", length $chunk, $chunk;
    }
    $c->flush;
    sleep 0.3;
    print $c "0\r\n\r\n";
});
