package Serve;

# The loop the tests' small helper servers share: listen on 127.0.0.1:PORT,
# a child per connection, and an end after ten minutes whatever happens.

use strict;
use warnings;
use Exporter qw(import);
use IO::Socket::INET;

our @EXPORT = qw(serve read_head);

sub serve {
    my ($port, $handler) = @_;
    alarm 600;
    $SIG{CHLD} = 'IGNORE';
    my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                    LocalPort => $port, Listen => 64,
                                    ReuseAddr => 1)
        or die "listen $port: $!";
    while (my $c = $srv->accept) {
        my $pid = fork // die "fork: $!";
        if ($pid) {
            close $c;
            next;
        }
        binmode $c;
        $handler->($c);
        exit 0;
    }
}

# The request line and headers of an HTTP request.
sub read_head {
    my ($c) = @_;
    my $head = '';
    while ($head !~ /\r\n\r\n/) {
        sysread($c, $head, 4096, length $head) or exit 0;
    }
    return $head;
}

1;
