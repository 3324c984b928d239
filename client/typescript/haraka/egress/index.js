'use strict'
// Haraka plugin "egress": each outbound message leaves from a source of an
// egress-resolver pool (bind = source_address, EHLO = ehlo_domain, port =
// remote_port), chosen by kumod's weighted round robin, suspended sources
// skipped. Haraka loads plugins as CommonJS and the client is an ES module,
// so the logic (dist/src/haraka.js) is loaded with a dynamic import().
// Setup: see the README of @egress-resolver/client.

const path = require('node:path')
const { pathToFileURL } = require('node:url')

const IMPLEMENTATION = pathToFileURL(path.join(__dirname, '..', '..', 'dist', 'src', 'haraka.js')).href

let plugin // Promise<EgressPlugin>, made on first use

exports.register = function () {
    this.load_egress_ini()
    this.register_hook('data_post', 'egress_data_post')
    this.register_hook('get_mx', 'egress_get_mx')
    this.register_hook('deferred', 'egress_failed')
    this.register_hook('bounce', 'egress_failed')
}

exports.load_egress_ini = function () {
    this.cfg = this.config.get('egress.ini', { booleans: ['+main.cache'] }, () => {
        this.load_egress_ini()
    })
}

function settings(cfg) {
    const main = cfg.main || {}
    return {
        target: String(main.target || ''),
        pool: String(main.pool || ''),
        relay: String(main.relay || ''),
        cache: main.cache !== false,
    }
}

exports.egress = function () {
    if (plugin === undefined) {
        const log = {
            info: (message, subject) => this.loginfo(message, subject),
            error: (message, subject) => this.logerror(message, subject),
        }
        plugin = import(IMPLEMENTATION).then((module) => new module.EgressPlugin(settings(this.cfg), log))
    }
    return plugin
}

exports.egress_data_post = function (next, connection) {
    const txn = connection.transaction
    const header = txn.header.get('X-Egress-Pool')
    if (header) txn.remove_header('X-Egress-Pool')
    this.egress().then(
        (egress) => {
            egress.dataPost(header, txn.notes)
            next()
        },
        (error) => {
            this.logerror(`egress: the plugin did not load: ${error}`, connection)
            next(DENYSOFT, 'egress routing is unavailable')
        },
    )
}

exports.egress_get_mx = function (next, hmail, domain) {
    this.egress()
        .then((egress) => egress.getMx(domain, hmail.todo.notes, hmail))
        .then(
            (answer) => {
                if (answer.code === 'OK') return next(OK, answer.mx)
                if (answer.code === 'CONT') return next()
                return next(answer.code === 'DENY' ? DENY : DENYSOFT, answer.message)
            },
            (error) => {
                this.logerror(`egress: get_mx failed: ${error}`, hmail)
                next(DENYSOFT, 'egress routing failed')
            },
        )
}

exports.egress_failed = function (next, hmail, params) {
    const why = params && params.err !== undefined ? String(params.err) : String(params)
    this.egress()
        .then((egress) => egress.failed(hmail.todo.notes, why, hmail))
        .then(
            () => next(),
            (error) => {
                this.logerror(`egress: reporting failed: ${error}`, hmail)
                next()
            },
        )
}

exports.shutdown = function () {
    if (plugin !== undefined) plugin.then((egress) => egress.close()).catch(() => {})
}
