#!/usr/bin/perl

# The sources' dependency order (README.md, Layout): a .c and its .h are
# one unit, X depends on Y when X's .c or .h includes Y's .h, and the
# units form a one-way graph.  The pure parsers at the bottom include no
# nginx header beyond ngx_core.h and no unit but another pure one, so each
# can be unit tested and fuzzed on its own.  "prove -v t/layout.t" prints
# the floors, from the ground up.

use strict;
use warnings;
use Test::More;
use File::Basename qw(dirname);
use Cwd qw(abs_path);

my $src = abs_path(dirname(__FILE__) . '/..') . '/ngx_registry_module';

my @pure = qw(
    ngx_http_registry_grammar
    ngx_http_registry_accept
    ngx_http_registry_challenge
    ngx_http_registry_json
    ngx_http_registry_manifest
    ngx_http_registry_grant
    ngx_http_registry_pattern
);

opendir my $dh, $src or die "$src: $!";
my @files = sort grep { /\.[ch]\z/ } readdir $dh;
closedir $dh;

ok(scalar @files, 'the sources are found');

# unit => { unit it includes => "file that includes it" }
my (%deps, %system);

for my $file (@files) {
    (my $unit = $file) =~ s/\.[ch]\z//;
    $deps{$unit} //= {};

    open my $fh, '<', "$src/$file" or die "$file: $!";
    while (my $line = <$fh>) {
        if ($line =~ /^\s*#\s*include\s+"([^"]+)\.h"/) {
            next if $1 eq $unit;
            $deps{$unit}{$1} //= $file;

        } elsif ($line =~ /^\s*#\s*include\s+<([^>]+)>/) {
            $system{$unit}{$1} //= $file;
        }
    }
    close $fh;
}

for my $unit (sort keys %deps) {
    for my $dep (sort keys %{ $deps{$unit} }) {
        ok(exists $deps{$dep}, "$deps{$unit}{$dep} includes $dep.h, "
                               . 'a file of the module');
    }
}

# the pure parsers

my %pure = map { $_ => 1 } @pure;

for my $unit (@pure) {
    ok(exists $deps{$unit}, "pure unit $unit exists");

    my @nginx = grep { !/\A(ngx_config|ngx_core)\.h\z/ && /\Angx_/ }
                sort keys %{ $system{$unit} // {} };
    is("@nginx", '', "$unit includes no nginx header beyond ngx_core.h");

    my @impure = grep { !$pure{$_} } sort keys %{ $deps{$unit} };
    is("@impure", '', "$unit includes only pure units");
}

# a depth-first walk; a unit met again while still on the path closes a
# circle

sub cycle {
    my (%state, @path);
    my $found;

    my $visit;
    $visit = sub {
        my ($u) = @_;
        $state{$u} = 1;
        push @path, $u;

        for my $d (sort keys %{ $deps{$u} }) {
            next unless exists $deps{$d};

            if (($state{$d} // 0) == 1) {
                my ($i) = grep { $path[$_] eq $d } 0 .. $#path;
                $found = [@path[$i .. $#path], $d];
                return;
            }

            $visit->($d) unless $state{$d};
            return if $found;
        }

        pop @path;
        $state{$u} = 2;
    };

    for my $u (sort keys %deps) {
        $visit->($u) unless $state{$u};
        last if $found;
    }

    return $found;
}

my $circle = cycle();
ok(!$circle, 'no #include cycle among the units')
    or diag('cycle: ' . join(' -> ', @$circle));

# the floors: a unit stands one above the highest unit it includes

my %floor;
my $changed = 1;
my $rounds = 0;

while ($changed && $rounds++ <= keys %deps) {
    $changed = 0;

    for my $u (sort keys %deps) {
        my $f = 1;

        for my $d (keys %{ $deps{$u} }) {
            next unless exists $deps{$d};
            my $df = ($floor{$d} // 1) + 1;
            $f = $df if $df > $f;
        }

        if (($floor{$u} // 0) != $f) {
            $floor{$u} = $f;
            $changed = 1;
        }
    }
}

unless ($changed) {
    for my $f (sort { $a <=> $b } keys %{ { reverse %floor } }) {
        note("floor $f: " . join(' ', map { s/\Angx_http_registry_?//r
                                            || '(shared types)' }
                                      sort grep { $floor{$_} == $f }
                                      keys %floor));
    }
}

done_testing();
