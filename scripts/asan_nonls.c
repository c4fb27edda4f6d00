/*-------------------------------------------------------------------------
 *
 * asan_nonls.c
 *		No message catalogs, for a server that preloads the ASan runtime.
 *
 * scripts/test.sh --sanitize runs an uninstrumented postgres with gcc's
 * libasan in LD_PRELOAD, followed by this library.  In such a process
 * glibc's bindtextdomain() waits forever on a lock at startup (the known
 * incompatibility of the sanitizer runtimes with glibc's gettext state), so
 * these stand-ins take the place of glibc's: no catalog is ever bound, and
 * messages stay in English, as they do anyway in the test cluster's C locale.
 *
 *-------------------------------------------------------------------------
 */

char	   *bindtextdomain(const char *domainname, const char *dirname);
char	   *textdomain(const char *domainname);
char	   *bind_textdomain_codeset(const char *domainname, const char *codeset);

/* Bind nothing; answer as though DIRNAME were now bound to DOMAINNAME. */
char *
bindtextdomain(const char *domainname, const char *dirname)
{
	return (char *) dirname;
}

/* Keep the default domain. */
char *
textdomain(const char *domainname)
{
	return (char *) (domainname ? domainname : "messages");
}

/* Bind no codeset. */
char *
bind_textdomain_codeset(const char *domainname, const char *codeset)
{
	return (char *) codeset;
}
