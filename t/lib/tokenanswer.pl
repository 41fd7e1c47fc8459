#!/usr/bin/perl

# A hostile token service for the tests: answers every request 200 with
# the bytes of FILE as its JSON body (a token only nested in an object, an
# answer of 100 KiB, ...), and logs each request line to LOG.  The body
# goes with Content-Length, or chunked (4 KiB chunks) when FILE.chunked
# exists.
# Usage: tokenanswer.pl PORT FILE LOG.  It exits by itself after 10 minutes.

use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use Serve;

my ($port, $file, $log) = @ARGV;

serve($port, sub {
    my ($c) = @_;
    my $head = read_head($c);
    my ($line) = $head =~ /^([^\r\n]*)/;
    open my $lf, '>>', $log or die;
    print $lf "$line\n";
    close $lf;
    open my $fh, '<:raw', $file or die;
    my $body = do { local $/; <$fh> };
    if (!-e "$file.chunked") {
        print $c "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
               . "Content-Length: " . length($body) . "\r\n"
               . "Connection: close\r\n\r\n$body";
        return;
    }
    print $c "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
           . "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    for (my $i = 0; $i < length $body; $i += 4096) {
        my $chunk = substr($body, $i, 4096);
        printf $c "%x\r\n%s\r\n", length $chunk, $chunk;
    }
    print $c "0\r\n\r\n";
});
