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
use IO::Socket::INET;
use Time::HiRes qw(sleep);

my ($port, $dir) = @ARGV;
alarm 600;
$SIG{CHLD} = 'IGNORE';

my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
                                Listen => 64, ReuseAddr => 1)
    or die "listen $port: $!";

while (my $c = $srv->accept) {
    my $pid = fork // die "fork: $!";
    if ($pid) {
        close $c;
        next;
    }
    binmode $c;
    my $head = '';
    while ($head !~ /\r\n\r\n/) {
        my $n = sysread($c, $head, 4096, length $head) or exit 0;
    }
    my ($mode, $hex) = $head =~ m{^GET /v2/(\w+)/\S*/blobs/sha256:([0-9a-f]{64}) };
    my $file = defined $hex && -e "$dir/$hex.bad" ? "$dir/$hex.bad"
             : defined $hex ? "$dir/$hex" : '';
    if (!$mode || !-e $file) {
        print $c "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
               . "Connection: close\r\n\r\n";
        exit 0;
    }
    open my $fh, '<:raw', $file or die;
    my $body = do { local $/; <$fh> };

    if ($mode eq 'close') {
        print $c "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream"
               . "\r\nConnection: close\r\n\r\n$body";
        exit 0;
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
    exit 0;
}
