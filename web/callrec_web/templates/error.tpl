% rebase('layout.tpl', title=_('Error {code}', code=code))
<h1>{{_('Error {code}', code=code)}}</h1>
<p>{{t(key)}}</p>
<p><a href="/">{{_('Back to the start page')}}</a></p>
