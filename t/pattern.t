#!/usr/bin/perl

# The allow and block lists' patterns on their own, without nginx: a list
# file's lines, the pattern grammar, "*" and "**" on their edges, and a
# bounded fuzz loop against the definition, built with AddressSanitizer
# and UBSan where the compiler has them.  The C program prints the TAP.

use strict;
use warnings;
use lib 't/lib';
use RegistryTest;

my ($bin, $sanitized) = eval {
    build_unit('pattern_test', 'ngx_http_registry_pattern.c');
};
if (!$bin) {
    print "1..1\nnot ok 1 - pattern_test builds\n";
    print "# $_\n" for split /\n/, $@;
    exit 1;
}
print $sanitized ? "# built with -fsanitize=address,undefined\n"
                 : "# built without sanitizers\n";

exec $bin, $ENV{FUZZ_ITERATIONS} // 200000;
