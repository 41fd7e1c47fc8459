#!/usr/bin/perl

# The grammar, the path parser, the Accept normaliser and the challenge
# and token parsers on their own, without nginx: table tests
# and a bounded fuzz loop, built with AddressSanitizer and UBSan where the
# compiler has them.  The C program prints the TAP.

use strict;
use warnings;
use lib 't/lib';
use RegistryTest;

my ($bin, $sanitized) = eval {
    build_unit('grammar_test', qw(ngx_http_registry_grammar.c
                                  ngx_http_registry_accept.c
                                  ngx_http_registry_challenge.c
                                  ngx_http_registry_json.c));
};
if (!$bin) {
    print "1..1\nnot ok 1 - grammar_test builds\n";
    print "# $_\n" for split /\n/, $@;
    exit 1;
}
print $sanitized ? "# built with -fsanitize=address,undefined\n"
                 : "# built without sanitizers\n";

exec $bin, $ENV{FUZZ_ITERATIONS} // 200000;
