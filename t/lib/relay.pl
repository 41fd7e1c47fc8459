#!/usr/bin/perl

# A TCP relay for the tests that drops the connection mid-response: it
# forwards each connection to 127.0.0.1:TO and closes both sides once
# CUT bytes of the answer have been passed on.
# Usage: relay.pl PORT TO CUT.  It exits by itself after 10 minutes.

use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use IO::Select;
use IO::Socket::INET;
use Serve;

my ($port, $to, $cut) = @ARGV;

serve($port, sub {
    my ($c) = @_;
    my $u = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $to)
        or exit 0;
    my $sel = IO::Select->new($c, $u);
    my $passed = 0;
    while (my @ready = $sel->can_read(30)) {
        for my $s (@ready) {
            my $n = sysread($s, my $buf, 65536) or exit 0;
            if ($s == $c) {
                syswrite($u, $buf);
                next;
            }
            $buf = substr($buf, 0, $cut - $passed) if $passed + $n > $cut;
            syswrite($c, $buf);
            $passed += length $buf;
            exit 0 if $passed >= $cut;
        }
    }
});
