/* Native code for the sandbox tests: what a program could do through a C
   extension, where no audit hook sees it. Built by tests/test_sandbox_levels.py. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <fcntl.h>
#include <unistd.h>
#include <signal.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

/* Each returns a short status string: "ok" or the errno text. No audit events. */
static PyObject *result(int rc) { return PyUnicode_FromString(rc < 0 ? strerror(errno) : "ok"); }

static PyObject *write_file(PyObject *self, PyObject *args) {
    const char *path; if (!PyArg_ParseTuple(args, "s", &path)) return NULL;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return result(-1);
    int rc = (int)write(fd, "escaped\n", 8); close(fd); return result(rc < 0 ? -1 : 0);
}
static PyObject *read_file(PyObject *self, PyObject *args) {
    const char *path; char buf[4096]; if (!PyArg_ParseTuple(args, "s", &path)) return NULL;
    int fd = open(path, O_RDONLY); if (fd < 0) return result(-1);
    ssize_t n = read(fd, buf, sizeof buf); close(fd); if (n < 0) return result(-1);
    return PyBytes_FromStringAndSize(buf, n);
}
static PyObject *spawn(PyObject *self, PyObject *args) {
    const char *prog, *arg; if (!PyArg_ParseTuple(args, "ss", &prog, &arg)) return NULL;
    pid_t pid = fork(); if (pid < 0) return result(-1);
    if (pid == 0) { execl(prog, prog, arg, (char *)NULL); _exit(127); }
    int status; waitpid(pid, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return result(0);
    return PyUnicode_FromFormat("child status %d", status);
}
static PyObject *tcp_connect(PyObject *self, PyObject *args) {
    int port; if (!PyArg_ParseTuple(args, "i", &port)) return NULL;
    int s = socket(AF_INET, SOCK_STREAM, 0); if (s < 0) return result(-1);
    struct sockaddr_in a = {0}; a.sin_family = AF_INET; a.sin_port = htons(port); a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = connect(s, (struct sockaddr *)&a, sizeof a); if (rc == 0) rc = (int)send(s, "escaped", 7, 0);
    int saved = errno; close(s); errno = saved; return result(rc < 0 ? -1 : 0);
}
static PyObject *send_signal(PyObject *self, PyObject *args) {
    int pid, sig; if (!PyArg_ParseTuple(args, "ii", &pid, &sig)) return NULL;
    return result(kill(pid, sig));
}
static PyMethodDef methods[] = {
    {"write_file", write_file, METH_VARARGS, NULL}, {"read_file", read_file, METH_VARARGS, NULL},
    {"spawn", spawn, METH_VARARGS, NULL}, {"tcp_connect", tcp_connect, METH_VARARGS, NULL},
    {"send_signal", send_signal, METH_VARARGS, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "hostile", NULL, -1, methods};
PyMODINIT_FUNC PyInit_hostile(void) { return PyModule_Create(&module); }
