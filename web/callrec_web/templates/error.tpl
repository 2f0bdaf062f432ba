% rebase('layout.tpl', title='Error ' + str(code))
<h1>Error {{code}}</h1>
<p>{{t(key)}}</p>
<p><a href="/">Back to the start page</a></p>
